/* The build's report: JSON for pipelines, gcloud commands for people. */
#include "cli/report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int sbd_json_mode_parse(const char *arg, enum sbd_json_mode *mode, sbd_error_t *err)
{
  if (arg == NULL || strcmp(arg, "full") == 0)
    *mode = SBD_JSON_FULL;
  else if (strcmp(arg, "flat") == 0)
    *mode = SBD_JSON_FLAT;
  else
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "--json takes no value, or =flat or =full, not \"%s\"",
                         arg);
  return 0;
}

/* The snapshot (index into the plan) holding a layer: the one with its chainID. */
static size_t snapshot_of(const struct sbd_plan *plan, const struct sbd_layer_desc *l)
{
  for (size_t i = 0; i < plan->n_snapshots; i++)
    if (strcmp(plan->snapshots[i].layer->chain_id, l->chain_id) == 0)
      return i;
  return SBD_PLAN_NO_PARENT;
}

/* "name@digest" pins what was built: the reference's repository (and tag),
 * at the digest the reference resolved to. */
static char *pinned_ref(const struct sbd_image *img)
{
  cleanup_free char *name = xstrdup(img->name);
  char *at = strchr(name, '@');
  if (at)
    *at = '\0';
  return xasprintf("%s@%s", name, img->target_digest);
}

static json_t *layers_json(const struct sbd_build_report *r, const struct sbd_image *img)
{
  json_t *layers = json_array();
  for (size_t k = 0; k < img->n_layers; k++) {
    const struct sbd_layer_desc *l = &img->layers[k];
    size_t s = snapshot_of(r->plan, l);
    cleanup_free char *path = xasprintf("snapshots/%zu/fs", s + 1);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "digest", l->digest, "media_type",
                          l->media_type ? l->media_type : "", "size", (json_int_t)l->size, "diff_id",
                          l->diff_id, "chain_id", l->chain_id, "snapshot", path);
    if (s != SBD_PLAN_NO_PARENT && r->snapshots) {
      json_object_set_new(o, "files", json_integer((json_int_t)r->snapshots[s].files));
      json_object_set_new(o, "unpacked_bytes", json_integer((json_int_t)r->snapshots[s].file_bytes));
    }
    json_array_append_new(layers, o);
  }
  return layers;
}

static json_t *full_json(const struct sbd_build_report *r)
{
  json_t *root = json_pack("{s:s, s:I}", "output", r->output, "size_bytes", (json_int_t)r->size_bytes);
  if (r->sha256)
    json_object_set_new(root, "sha256", json_string(r->sha256));
  if (r->gce_tar)
    json_object_set_new(root, "gce_tar",
                        json_pack("{s:s, s:s, s:I}", "path", r->gce_tar, "sha256",
                                  r->gce_tar_sha256 ? r->gce_tar_sha256 : "", "size_bytes",
                                  (json_int_t)r->gce_tar_bytes));
  json_t *images = json_array();
  uint64_t files = 0;
  for (size_t i = 0; i < r->plan->n_snapshots && r->snapshots; i++)
    files += r->snapshots[i].files;
  for (size_t i = 0; i < r->n_images; i++) {
    const struct sbd_image *img = &r->images[i];
    cleanup_free char *pinned = pinned_ref(img);
    json_array_append_new(
        images, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "ref", img->given, "name",
                          img->name, "pinned", pinned, "digest", img->target_digest, "media_type",
                          img->target_media_type ? img->target_media_type : "", "manifest_digest",
                          img->manifest_digest, "config_digest", img->config_digest, "platform",
                          img->platform ? img->platform : "", "layers", layers_json(r, img)));
  }
  json_object_set_new(root, "images", images);
  json_object_set_new(root, "snapshots", json_integer((json_int_t)r->plan->n_snapshots));
  json_object_set_new(root, "files", json_integer((json_int_t)files));
  json_object_set_new(root, "seconds", json_real(r->seconds));
  if (r->name) {
    json_object_set_new(root, "name", json_string(r->name));
    json_t *cmds = json_array();
    char **lines = sbd_report_gcloud_commands(r);
    for (char **p = lines; *p; p++)
      json_array_append_new(cmds, json_string(*p));
    sbd_report_free_commands(lines);
    json_object_set_new(root, "gcloud", cmds);
  }
  return root;
}

/* Terraform's `external` data source takes only an object of strings. */
static json_t *flat_json(const struct sbd_build_report *r)
{
  cleanup_free char *size = xasprintf("%llu", (unsigned long long)r->size_bytes);
  struct sbd_buf refs = {0};
  for (size_t i = 0; i < r->n_images; i++) {
    cleanup_free char *pinned = pinned_ref(&r->images[i]);
    sbd_buf_appendf(&refs, "%s%s", i ? "," : "", pinned);
  }
  cleanup_free char *images = sbd_buf_cstr(&refs);
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "output", r->output, "size_bytes", size, "sha256",
                   r->sha256 ? r->sha256 : "", "gce_tar", r->gce_tar ? r->gce_tar : "",
                   "gce_tar_sha256", r->gce_tar_sha256 ? r->gce_tar_sha256 : "", "images", images);
}

int sbd_report_print_json(const struct sbd_build_report *r, enum sbd_json_mode mode, FILE *out,
                          sbd_error_t *err)
{
  json_t *root = mode == SBD_JSON_FLAT ? flat_json(r) : full_json(r);
  size_t flags = JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6) |
                 (mode == SBD_JSON_FLAT ? JSON_COMPACT : JSON_INDENT(2));
  int rc = root ? json_dumpf(root, out, flags) : -1;
  json_decref(root);
  if (rc < 0 || fputc('\n', out) == EOF || fflush(out) != 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "cannot print the JSON report");
  return 0;
}

int sbd_gke_image_name_check(const char *name, sbd_error_t *err)
{
  size_t n = strlen(name);
  const char *why = NULL;
  if (n == 0)
    why = "is empty";
  else if (n > 39)
    why = "is longer than 39 characters (GKE labels nodes gke-secondary-boot-disk-NAME, and a "
          "label name ends at 63)";
  else if (name[0] < 'a' || name[0] > 'z')
    why = "must start with a lowercase letter";
  else if (name[n - 1] == '-')
    why = "must not end with '-'";
  for (size_t i = 0; why == NULL && i < n; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
      why = "may hold only lowercase letters, digits and '-'";
  if (why)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "--name \"%s\" %s", name, why);
  return 0;
}

/* Quoted for a POSIX shell when it needs to be. */
static char *shell_word(const char *s)
{
  if (s[0] && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") ==
                  strlen(s))
    return xstrdup(s);
  struct sbd_buf b = {0};
  sbd_buf_append(&b, "'", 1);
  for (const char *p = s; *p; p++)
    if (*p == '\'')
      sbd_buf_append(&b, "'\\''", 4);
    else
      sbd_buf_append(&b, p, 1);
  sbd_buf_append(&b, "'", 1);
  return sbd_buf_cstr(&b);
}

char **sbd_report_gcloud_commands(const struct sbd_build_report *r)
{
  char **cmds = xcalloc(5, sizeof(*cmds));
  size_t n = 0;
  cleanup_free char *tar = shell_word(r->gce_tar ? r->gce_tar : "DISK.tar.gz");
  cleanup_free char *object = xasprintf("gs://$BUCKET/%s.tar.gz", r->name);
  cleanup_free char *description =
      r->sha256 ? xasprintf(" --description='sbdisk raw sha256 %s'", r->sha256) : xstrdup("");
  if (r->gce_tar == NULL)
    cmds[n++] = xasprintf("# build with --gce-tar DISK.tar.gz first: GCE imports only that archive");
  cmds[n++] = xasprintf("gcloud storage cp %s %s", tar, object);
  cmds[n++] = xasprintf("gcloud compute images create %s --project=$PROJECT --source-uri=%s%s", r->name,
                        object, description);
  cmds[n++] = xasprintf(
      "gcloud container node-pools create $POOL --project=$PROJECT --cluster=$CLUSTER "
      "--location=$LOCATION --enable-image-streaming "
      "--secondary-boot-disk=disk-image=projects/$PROJECT/global/images/%s,mode=CONTAINER_IMAGE_CACHE",
      r->name);
  return cmds;
}

void sbd_report_free_commands(char **cmds)
{
  for (char **p = cmds; p && *p; p++)
    free(*p);
  free(cmds);
}
