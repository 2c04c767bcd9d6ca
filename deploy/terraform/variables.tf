# --- where and how many --------------------------------------------------------------------

variable "region" {
  description = "AWS region for the workshop VMs."
  type        = string
  default     = "eu-west-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (and of the VM Name tags)."
  type        = string
  default     = "dataprime-workshop"
}

variable "mode" {
  description = "shared: one VM for everybody (attendees filter by baggage workshop.attendee); per-attendee: attendee_count VMs, one stack each."
  type        = string
  default     = "shared"

  validation {
    condition     = contains(["shared", "per-attendee"], var.mode)
    error_message = "mode must be \"shared\" or \"per-attendee\"."
  }
}

variable "attendee_count" {
  description = "Number of attendees; the number of VMs in per-attendee mode (ignored in shared mode)."
  type        = number
  default     = 1

  validation {
    condition     = var.attendee_count >= 1 && var.attendee_count <= 100 && floor(var.attendee_count) == var.attendee_count
    error_message = "attendee_count must be a whole number between 1 and 100."
  }
}

variable "instance_type" {
  description = "EC2 type. t3.small (2 GiB) fits the stack (≤ 1.9 GB of container limits); use t3.medium with enable_lab."
  type        = string
  default     = "t3.small"
}

variable "root_volume_gb" {
  description = "Root volume size (gp3, GiB): Docker images, the image build cache, Redis AOF, SQLite."
  type        = number
  default     = 20
}

variable "admin_cidr" {
  description = "The only CIDR allowed to SSH (port 22), e.g. your address/32."
  type        = string

  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && var.admin_cidr != "0.0.0.0/0"
    error_message = "admin_cidr must be a CIDR such as 198.51.100.7/32, and not 0.0.0.0/0."
  }
}

variable "key_name" {
  description = "Existing EC2 key pair for SSH (null: no key, SSM or serial console only)."
  type        = string
  default     = null
}

variable "subnet_id" {
  description = "Subnet for the VMs (null: the first subnet of the default VPC). Must assign public IPs."
  type        = string
  default     = null
}

# --- the kit -------------------------------------------------------------------------------

variable "kit_git_url" {
  description = "Git URL the VMs clone the kit from."
  type        = string
}

variable "kit_version" {
  description = "Git branch or tag of the kit to deploy."
  type        = string
  default     = "main"
}

variable "enable_lab" {
  description = "Start the lab profile (JupyterLab at /lab/, Locust at /locust/). Needs instance_type t3.medium or larger."
  type        = bool
  default     = false
}

# --- the env file (same names as env.vm.example) -------------------------------------------

variable "cx_private_key" {
  description = "CX_PRIVATE_KEY: Coralogix Send-Your-Data API key (the collector sends with it)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.cx_private_key) > 0
    error_message = "cx_private_key (CX_PRIVATE_KEY) is required."
  }
}

variable "cx_api_key" {
  description = "CX_API_KEY: Coralogix DataQuerying API key (labs query with it); may be empty."
  type        = string
  default     = ""
  sensitive   = true
}

variable "cx_domain" {
  description = "CX_DOMAIN: your Coralogix region's domain, e.g. eu2.coralogix.com."
  type        = string
  default     = "eu2.coralogix.com"
}

variable "cx_application_name" {
  description = "CX_APPLICATION_NAME on every signal."
  type        = string
  default     = "dataprime-workshop"
}

variable "cx_team_url" {
  description = "CX_TEAM_URL: the team's console URL (labs build links with it); may be empty."
  type        = string
  default     = ""
}

variable "admin_token" {
  description = "ADMIN_TOKEN for the admin API (faults, reset). Generate one: openssl rand -hex 24."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.admin_token) >= 16
    error_message = "admin_token (ADMIN_TOKEN) is required, at least 16 characters."
  }
}

variable "attendee_faults" {
  description = "ATTENDEE_FAULTS: let attendees toggle their own faults."
  type        = bool
  default     = false
}

variable "query_engine" {
  description = "QUERY_ENGINE: llm or rules."
  type        = string
  default     = "llm"

  validation {
    condition     = contains(["llm", "rules"], var.query_engine)
    error_message = "query_engine must be llm or rules."
  }
}

variable "jupyter_token" {
  description = "JUPYTER_TOKEN for JupyterLab at /lab/ (lab profile)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "lab_password" {
  description = "LAB_PASSWORD for the Locust UI at /locust/ (user LAB_USER=workshop; lab profile)."
  type        = string
  default     = ""
  sensitive   = true
}
