# DataPrime Workshop Kit on EC2: one VM (mode = "shared") or one per attendee
# (mode = "per-attendee"), each running docker-compose.vm.yml. See README.md.

locals {
  instance_count = var.mode == "shared" ? 1 : var.attendee_count
  subnet_id      = coalesce(var.subnet_id, sort(data.aws_subnets.default.ids)[0])
}

# Ubuntu 24.04 LTS (noble), amd64, from Canonical.
data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"]

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

data "aws_subnet" "selected" {
  id = local.subnet_id
}

# HTTP/HTTPS for everybody (nginx is the only published port); SSH only from admin_cidr.
resource "aws_security_group" "workshop" {
  name        = "${var.name_prefix}-sg"
  description = "DataPrime workshop: 80/443 public, 22 from admin_cidr only"
  vpc_id      = data.aws_subnet.selected.vpc_id

  ingress {
    description = "HTTP (redirects to HTTPS)"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  ingress {
    description = "HTTPS (nginx)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  ingress {
    description = "SSH from the instructor"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.admin_cidr]
  }

  egress {
    description = "Image pulls, package installs, Coralogix ingress"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "workshop" {
  count = local.instance_count

  ami                         = data.aws_ami.ubuntu.id
  instance_type               = var.instance_type
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.workshop.id]
  key_name                    = var.key_name
  associate_public_ip_address = true

  # The collector's ec2 resource detector calls IMDSv2 from inside a container: one extra hop.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gb
    encrypted   = true
  }

  # Secrets end up in the instance user data and in the Terraform state: keep both private
  # (README.md, "Secrets").
  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/user-data.sh.tftpl", {
    kit_git_url            = var.kit_git_url
    kit_version            = var.kit_version
    enable_lab             = var.enable_lab ? "1" : "0"
    cx_private_key         = var.cx_private_key
    cx_api_key             = var.cx_api_key
    cx_domain              = var.cx_domain
    cx_application_name    = var.cx_application_name
    cx_team_url            = var.cx_team_url
    admin_token            = var.admin_token
    attendee_faults        = var.attendee_faults ? "true" : "false"
    query_engine           = var.query_engine
    jupyter_token          = var.jupyter_token
    lab_password           = var.lab_password
    deployment_environment = var.mode == "shared" ? "workshop" : "workshop-attendee-${count.index + 1}"
  })

  tags = {
    Name     = var.mode == "shared" ? var.name_prefix : "${var.name_prefix}-${count.index + 1}"
    Attendee = var.mode == "shared" ? "all" : tostring(count.index + 1)
  }

  lifecycle {
    precondition {
      condition     = !var.enable_lab || !contains(["t3.micro", "t3.small", "t3a.micro", "t3a.small"], var.instance_type)
      error_message = "enable_lab needs at least 4 GiB of memory: set instance_type = \"t3.medium\"."
    }
    precondition {
      condition     = !var.enable_lab || length(var.lab_password) >= 8
      error_message = "enable_lab needs lab_password (LAB_PASSWORD, at least 8 characters) for /locust/."
    }
  }
}
