output "urls" {
  description = "The workshop URL of every VM (self-signed certificate)."
  value       = [for vm in aws_instance.workshop : "https://${vm.public_dns}/"]
}

output "lab_urls" {
  description = "JupyterLab and Locust URLs of every VM (empty without enable_lab)."
  value = var.enable_lab ? [
    for vm in aws_instance.workshop : {
      jupyter = "https://${vm.public_dns}/lab/"
      locust  = "https://${vm.public_dns}/locust/"
    }
  ] : []
}

output "public_ips" {
  description = "Public IPv4 address of every VM."
  value       = aws_instance.workshop[*].public_ip
}

output "ssh" {
  description = "SSH command per VM (from admin_cidr only)."
  value       = [for vm in aws_instance.workshop : "ssh ubuntu@${vm.public_dns}"]
}
