# Builds a secondary boot disk with sbdisk, imports it into GCE and gives a
# GKE node pool that disk in CONTAINER_IMAGE_CACHE mode.
#
# Where the build runs: in the `external` data source, at plan time.  The
# image's name must carry the disk's sha256 so that a changed disk makes a new
# image (and an unchanged one changes nothing), and only a build knows that
# digest.  A build is cheap to repeat: layers come from sbdisk's blob cache and
# builds are reproducible (same images + SOURCE_DATE_EPOCH -> same bytes), so a
# plan over unchanged images rebuilds the same disk and shows no changes.
#
# The terraform_data resource runs at apply time and makes sure the archive the
# plan described is the one uploaded: `terraform apply PLANFILE` on another
# machine, or after the file was removed, rebuilds it; a disk whose digest is
# not the planned one (a tag moved between plan and apply) stops the apply.

locals {
  disk_raw = "${abspath(path.module)}/disk.raw"
  disk_tar = "${abspath(path.module)}/disk.tar.gz"
  disk     = data.external.disk.result

  # <prefix>-<12 hex digits>: at most 39 characters, the most GKE accepts.
  image_name = "${var.image_name}-${substr(local.disk.sha256, 0, 12)}"
}

# `program` is an argv list run without a shell, so each option is its own
# element.  Terraform writes a JSON query on stdin; sbdisk reads stdin only
# for `-f -` or --password-stdin, so it needs no wrapper.  `env` sets
# SOURCE_DATE_EPOCH because the data source has no environment argument.
# --json=flat prints the one flat object of strings this data source accepts.
data "external" "disk" {
  program = concat([
    "env", "SOURCE_DATE_EPOCH=${var.source_date_epoch}",
    var.sbdisk, "build", "--json=flat", "--output", local.disk_raw, "--gce-tar", local.disk_tar,
  ], var.images)
}

resource "terraform_data" "disk" {
  triggers_replace = {
    images = var.images
    sha256 = local.disk.sha256
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    environment = {
      SBDISK            = var.sbdisk
      SOURCE_DATE_EPOCH = var.source_date_epoch
      IMAGES            = join(" ", var.images)
      RAW               = local.disk_raw
      TAR               = local.disk_tar
      TAR_SHA256        = local.disk.gce_tar_sha256
    }
    command = <<-EOT
      set -eu
      if ! echo "$TAR_SHA256  $TAR" | sha256sum --check --status 2>/dev/null; then
        # shellcheck disable=SC2086 # references hold no spaces
        "$SBDISK" build --quiet --output "$RAW" --gce-tar "$TAR" $IMAGES
        echo "$TAR_SHA256  $TAR" | sha256sum --check --quiet ||
          { echo "the disk built now differs from the planned one: plan again" >&2; exit 1; }
      fi
    EOT
  }
}

resource "google_storage_bucket_object" "disk" {
  bucket = var.bucket
  name   = "sbdisk/${local.image_name}.tar.gz"
  source = local.disk.gce_tar

  depends_on = [terraform_data.disk]
}

resource "google_compute_image" "cache" {
  name   = local.image_name
  family = var.image_name
  # Labels cannot hold a whole sha256 (63 characters at most); the description
  # can, and pipelines compare it to skip uploading an unchanged disk.
  description = "sbdisk disk.raw sha256=${local.disk.sha256}"
  labels      = { built-by = "sbdisk" }

  # raw_disk takes the archive's https URL.  Its optional sha1 is left out:
  # the Compute API marks it deprecated, and the apply-time sha256 check above
  # already pins what is uploaded.
  raw_disk {
    source = "https://storage.googleapis.com/${google_storage_bucket_object.disk.bucket}/${google_storage_bucket_object.disk.name}"
  }

  # The node pool still uses the old image until its replacement is up.
  lifecycle {
    create_before_destroy = true
  }
}

resource "google_container_node_pool" "cache" {
  cluster     = var.cluster
  location    = var.location
  name_prefix = "${var.node_pool_name}-"
  node_count  = var.node_count

  node_config {
    machine_type = var.machine_type
    image_type   = "COS_CONTAINERD"

    # Secondary boot disks in CONTAINER_IMAGE_CACHE mode need image streaming.
    gcfs_config {
      enabled = true
    }

    # The provider documents disk_image as global/images/NAME for an image in
    # the pool's own project (projects/P/global/images/NAME names another's).
    secondary_boot_disks {
      disk_image = "global/images/${google_compute_image.cache.name}"
      mode       = "CONTAINER_IMAGE_CACHE"
    }
  }

  # A new disk means a new pool; pods move over before the old pool goes.
  lifecycle {
    create_before_destroy = true
  }
}
