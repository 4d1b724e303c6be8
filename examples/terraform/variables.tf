variable "project" {
  description = "The GCP project that holds the bucket, the image and the cluster."
  type        = string
}

variable "images" {
  description = "The container images to preload, as docker writes them (nginx:1.27, us-docker.pkg.dev/P/repo/app@sha256:...)."
  type        = list(string)

  validation {
    condition     = length(var.images) > 0
    error_message = "Give at least one image to preload."
  }
}

variable "image_name" {
  description = "Prefix of the disk image's name; a dash and 12 hex digits of the disk's sha256 follow it."
  type        = string
  default     = "sbdisk-cache"

  # GKE puts the image name into a node label key whose name part is
  # "gke-secondary-boot-disk-" (24 characters) + NAME and may hold 63, so NAME
  # stays within 39: 26 here, plus "-" and 12 hex digits.
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.image_name)) && length(var.image_name) <= 26
    error_message = "image_name must match [a-z]([-a-z0-9]*[a-z0-9])? and be at most 26 characters (39 with the digest suffix)."
  }
}

variable "bucket" {
  description = "An existing GCS bucket to hold the archive GCE imports the image from."
  type        = string
}

variable "cluster" {
  description = "The GKE cluster (Standard, 1.28.3-gke.1067000 or later) that gets the node pool."
  type        = string
}

variable "location" {
  description = "The cluster's region or zone."
  type        = string
}

variable "node_pool_name" {
  description = "Prefix of the node pool's name (a new pool replaces the old one when the disk changes)."
  type        = string
  default     = "cached"
}

variable "node_count" {
  description = "Nodes per zone in the pool."
  type        = number
  default     = 1
}

variable "machine_type" {
  description = "Machine type of the pool's nodes."
  type        = string
  default     = "e2-standard-4"
}

variable "sbdisk" {
  description = "The sbdisk binary (a path, or a name on PATH)."
  type        = string
  default     = "sbdisk"
}

variable "source_date_epoch" {
  description = "SOURCE_DATE_EPOCH for the build: a fixed time keeps the disk byte-identical while the images are, so plans stay empty."
  type        = string
  default     = "1704067200"
}
