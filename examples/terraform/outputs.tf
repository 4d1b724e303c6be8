output "disk_sha256" {
  description = "sha256 of disk.raw; the image name carries its first 12 hex digits."
  value       = data.external.disk.result.sha256
}

output "images" {
  description = "What the disk holds, each image pinned as ref@digest."
  value       = split(",", data.external.disk.result.images)
}

output "disk_image" {
  description = "The image the node pool's secondary boot disk is made from."
  value       = google_compute_image.cache.self_link
}

output "node_pool" {
  value = google_container_node_pool.cache.name
}

# Pods that should use the preloaded images select the nodes GKE labels for
# this disk (see ../kubernetes/pod.yaml).
output "node_selector" {
  value = {
    "cloud.google.com.node-restriction.kubernetes.io/gke-secondary-boot-disk-${google_compute_image.cache.name}" = "CONTAINER_IMAGE_CACHE.${var.project}"
  }
}
