terraform {
  # Terraform ≥ 1.6 or OpenTofu ≥ 1.6.
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project = "dataprime-workshop"
      Name    = var.name_prefix
    }
  }
}
