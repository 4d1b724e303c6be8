terraform {
  # terraform_data arrived in Terraform 1.4.
  required_version = ">= 1.4"

  required_providers {
    # node_config.secondary_boot_disks arrived in google 5.28.0.
    google = {
      source  = "hashicorp/google"
      version = ">= 5.28.0"
    }
    external = {
      source  = "hashicorp/external"
      version = ">= 2.3"
    }
  }
}

provider "google" {
  project = var.project
}
