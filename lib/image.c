/* Resolving a reference: index -> platform manifest -> config -> layers. */
#include "image.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define MAX_DOC (4u * 1024 * 1024)
#define MAX_NESTING 4

/* A manifest, index or config document in memory. */
struct doc {
  char *body;
  size_t len;
  char *media_type; /* as served (may be NULL for OCI layouts and configs) */
  char digest[SBD_DIGEST_STR_LEN];
};

static void doc_free(struct doc *d)
{
  free(d->body);
  free(d->media_type);
  memset(d, 0, sizeof(*d));
}

#define cleanup_doc __attribute__((cleanup(doc_free)))

/* --- reading documents ------------------------------------------------------ */

static char *layout_blob_path(const struct sbd_image *img, const char *digest)
{
  return xasprintf("%s/blobs/sha256/%s", img->ref.oci_dir, digest + strlen("sha256:"));
}

/* Reads a file that must hash to digest. */
static int read_verified(const char *path, const char *digest, struct doc *out, sbd_error_t *err)
{
  if (sbd_read_file(path, MAX_DOC, &out->body, &out->len) < 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, errno, "cannot read %s", path);
  sbd_digest_buffer(out->body, out->len, out->digest);
  if (strcmp(out->digest, digest) != 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s does not match its digest %s (it hashes to %s)",
                         path, digest, out->digest);
  return 0;
}

struct cache_sink {
  struct sbd_cache_writer *w;
  sbd_fetch_progress progress;
  void *opaque;
  uint64_t total;
};

static int sink_to_cache(void *opaque, const void *data, size_t len, sbd_error_t *err)
{
  struct cache_sink *s = opaque;
  if (sbd_cache_writer_write(s->w, data, len, err) < 0)
    return -1;
  if (s->progress)
    s->progress(s->opaque, (uint64_t)sbd_cache_writer_size(s->w), s->total);
  return 0;
}

/* Downloads a blob into the cache unless a verified copy is there. */
static int fetch_to_cache(const struct sbd_source *src, const struct sbd_image *img,
                          const char *digest, int64_t size, sbd_fetch_progress progress,
                          void *opaque, bool *cached, sbd_error_t *err)
{
  *cached = false;
  if (sbd_cache_contains(src->cache, digest, size)) {
    bool ok = false;
    if (sbd_cache_verify(src->cache, digest, &ok, err) < 0)
      return -1;
    if (ok) {
      *cached = true;
      return 0;
    }
  }
  if (src->registry == NULL)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "no registry client");
  struct cache_sink s = {.progress = progress, .opaque = opaque, .total = (uint64_t)size};
  if (sbd_cache_writer_begin(src->cache, digest, &s.w, err) < 0)
    return -1;
  if (sbd_registry_get_blob(src->registry, &img->ref, digest, sink_to_cache, &s, err) < 0) {
    sbd_cache_writer_abort(s.w);
    return -1;
  }
  if (size >= 0 && sbd_cache_writer_size(s.w) != size) {
    int64_t got = sbd_cache_writer_size(s.w);
    sbd_cache_writer_abort(s.w);
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "blob %s is %lld bytes, the manifest says %lld",
                         digest, (long long)got, (long long)size);
  }
  return sbd_cache_writer_commit(s.w, err);
}

/* A manifest or index by digest (or, from a registry, by tag). */
static int read_manifest(const struct sbd_source *src, const struct sbd_image *img,
                         const char *reference, struct doc *out, sbd_error_t *err)
{
  if (sbd_ref_is_oci_layout(&img->ref)) {
    cleanup_free char *path = layout_blob_path(img, reference);
    return read_verified(path, reference, out, err);
  }
  struct sbd_fetched_manifest m = {0};
  if (sbd_registry_get_manifest(src->registry, &img->ref, reference, &m, err) < 0)
    return -1;
  out->body = steal_pointer(&m.body);
  out->len = m.len;
  out->media_type = steal_pointer(&m.media_type);
  memcpy(out->digest, m.digest, sizeof(out->digest));
  sbd_fetched_manifest_free(&m);
  return 0;
}

/* A small blob (the config), through the cache for registry images. */
static int read_blob(const struct sbd_source *src, const struct sbd_image *img, const char *digest,
                     int64_t size, struct doc *out, sbd_error_t *err)
{
  if (size > (int64_t)MAX_DOC)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "config %s is too large (%lld bytes)", digest,
                         (long long)size);
  if (sbd_ref_is_oci_layout(&img->ref)) {
    cleanup_free char *path = layout_blob_path(img, digest);
    return read_verified(path, digest, out, err);
  }
  bool cached;
  if (fetch_to_cache(src, img, digest, size, NULL, NULL, &cached, err) < 0)
    return -1;
  cleanup_free char *path = sbd_cache_path(src->cache, digest);
  return read_verified(path, digest, out, err);
}

/* --- OCI layouts: index.json and its ref.name annotations ---------------------- */

#define ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define ANNOTATION_IMAGE_NAME "io.containerd.image.name"

static const char *annotation(json_t *entry, const char *key)
{
  return json_string_value(json_object_get(json_object_get(entry, "annotations"), key));
}

/* Picks the index.json entry for the tag (or the only entry when no tag is
 * given, as skopeo does) and names the image. */
static void json_cleanup(json_t **j)
{
  json_decref(*j);
}

#define cleanup_json __attribute__((cleanup(json_cleanup)))

static void name_image(struct sbd_image *img, json_t *entry, char **name)
{
  const char *image_name = annotation(entry, ANNOTATION_IMAGE_NAME);
  const char *ref_name = annotation(entry, ANNOTATION_REF_NAME);
  struct sbd_ref parsed = {0};
  if (image_name)
    *name = xstrdup(image_name);
  else if (ref_name && strchr(ref_name, '/') && sbd_ref_parse(ref_name, &parsed, NULL) == 0)
    *name = sbd_ref_name(&parsed);
  else
    *name = sbd_ref_name(&img->ref);
  sbd_ref_free(&parsed);
}

/* Picks the index.json entry for the tag (or the only entry when no tag is
 * given, as skopeo does) and names the image. */
static int layout_select(struct sbd_image *img, struct sbd_descriptor *out, char **name,
                         sbd_error_t *err)
{
  cleanup_free char *path = xasprintf("%s/index.json", img->ref.oci_dir);
  cleanup_free char *body = NULL;
  size_t len;
  if (sbd_read_file(path, MAX_DOC, &body, &len) < 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, errno, "%s is not an OCI image layout (%s)",
                         img->ref.oci_dir, path);
  json_error_t jerr;
  cleanup_json json_t *root = json_loadb(body, len, 0, &jerr);
  json_t *manifests = json_object_get(root, "manifests");
  if (!json_is_array(manifests) || json_array_size(manifests) == 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: no manifests%s%s", path, root ? "" : ": ",
                         root ? "" : jerr.text);
  json_t *chosen = NULL;
  cleanup_buf struct sbd_buf tags = {0};
  size_t i;
  json_t *entry;
  json_array_foreach(manifests, i, entry)
  {
    const char *ref_name = annotation(entry, ANNOTATION_REF_NAME);
    if (ref_name)
      sbd_buf_appendf(&tags, "%s%s", tags.len ? ", " : "", ref_name);
    if (img->ref.oci_tag && ref_name && strcmp(ref_name, img->ref.oci_tag) == 0 && !chosen)
      chosen = entry;
  }
  if (!img->ref.oci_tag && json_array_size(manifests) == 1)
    chosen = json_array_get(manifests, 0);
  if (!chosen && img->ref.oci_tag)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s has no image tagged \"%s\" (it has: %s)",
                         img->ref.oci_dir, img->ref.oci_tag,
                         tags.len ? sbd_buf_cstr(&tags) : "no tags");
  if (!chosen)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "%s holds %zu images; name one as oci:%s:TAG (%s)",
                         img->ref.oci_dir, json_array_size(manifests), img->ref.oci_dir,
                         tags.len ? sbd_buf_cstr(&tags) : "no tags");

  /* Reuse the index parser on a one-entry index to validate the descriptor. */
  cleanup_json json_t *one = json_pack("{s:i, s:[O]}", "schemaVersion", 2, "manifests", chosen);
  cleanup_free char *text = json_dumps(one, JSON_COMPACT);
  struct sbd_index idx = {0};
  if (sbd_index_parse(text, strlen(text), &idx, err) < 0)
    return -1;
  *out = idx.manifests[0];
  memset(&idx.manifests[0], 0, sizeof(idx.manifests[0]));
  sbd_index_free(&idx);
  name_image(img, chosen, name);
  return 0;
}

/* --- the walk ---------------------------------------------------------------- */

static int str_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ctr's PLATFORMS column for an index: every entry's platform, de-duplicated
 * and sorted. */
static char *index_platforms(const struct sbd_index *idx)
{
  char **list = xcalloc(idx->n_manifests + 1, sizeof(*list));
  size_t n = 0;
  for (size_t i = 0; i < idx->n_manifests; i++)
    if (idx->manifests[i].has_platform)
      list[n++] = sbd_platform_format(&idx->manifests[i].platform);
  qsort(list, n, sizeof(*list), str_cmp);
  struct sbd_buf b = {0};
  for (size_t i = 0; i < n; i++)
    if (i == 0 || strcmp(list[i], list[i - 1]) != 0)
      sbd_buf_appendf(&b, "%s%s", b.len ? "," : "", list[i]);
  for (size_t i = 0; i < n; i++)
    free(list[i]);
  free(list);
  return b.len ? sbd_buf_cstr(&b) : xstrdup("-");
}

static const char *kind_media_type(enum sbd_manifest_kind kind)
{
  return kind == SBD_KIND_INDEX ? SBD_MT_OCI_INDEX : SBD_MT_OCI_MANIFEST;
}

static int fill_layers(struct sbd_image *img, const struct sbd_manifest *m,
                       const struct sbd_config *c, sbd_error_t *err)
{
  if (m->n_layers == 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "the image has no layers");
  if (c->n_diff_ids != m->n_layers)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "the manifest lists %zu layers but the config has %zu diff_ids",
                         m->n_layers, c->n_diff_ids);
  img->layers = xcalloc(m->n_layers, sizeof(*img->layers));
  img->n_layers = m->n_layers;
  for (size_t i = 0; i < m->n_layers; i++) {
    const struct sbd_descriptor *d = &m->layers[i];
    struct sbd_layer_desc *l = &img->layers[i];
    l->media_type = xstrdup(d->media_type);
    snprintf(l->digest, sizeof(l->digest), "%s", d->digest);
    l->size = d->size;
    l->compression = sbd_layer_compression(d->media_type);
    l->foreign = d->n_urls > 0 || strstr(d->media_type, "nondistributable") != NULL ||
                 strstr(d->media_type, "foreign") != NULL;
    l->url = d->first_url ? xstrdup(d->first_url) : NULL;
    if (l->compression == SBD_COMPRESSION_UNKNOWN)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                           "layer %zu (%s) has media type %s, which is not a layer sbdisk can unpack",
                           i + 1, d->digest, d->media_type);
    snprintf(l->diff_id, sizeof(l->diff_id), "%s", c->diff_ids[i]);
    sbd_chain_id(i ? img->layers[i - 1].chain_id : NULL, l->diff_id, l->chain_id);
    img->listed_size += (uint64_t)d->size;
  }
  return 0;
}

static int resolve(const struct sbd_source *src, struct sbd_image *img, sbd_error_t *err)
{
  cleanup_doc struct doc top = {0};
  if (sbd_ref_is_oci_layout(&img->ref)) {
    struct sbd_descriptor d = {0};
    char *name = NULL;
    if (layout_select(img, &d, &name, err) < 0)
      return -1;
    img->name = name;
    int r = read_manifest(src, img, d.digest, &top, err);
    top.media_type = xstrdup(d.media_type);
    sbd_descriptor_free(&d);
    if (r < 0)
      return -1;
  } else {
    img->name = sbd_ref_name(&img->ref);
    if (read_manifest(src, img, sbd_ref_reference(&img->ref), &top, err) < 0)
      return -1;
  }
  enum sbd_manifest_kind kind = sbd_manifest_kind_of(top.media_type, top.body, top.len);
  if (kind == SBD_KIND_UNKNOWN)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s is not an image manifest or index (%s)",
                         top.digest, top.media_type ? top.media_type : "no media type");
  img->target_media_type = xstrdup(top.media_type && strchr(top.media_type, '/')
                                       ? top.media_type
                                       : kind_media_type(kind));
  memcpy(img->target_digest, top.digest, sizeof(img->target_digest));

  cleanup_doc struct doc cur = top;
  memset(&top, 0, sizeof(top));
  img->listed_size = cur.len;
  for (int depth = 0; kind == SBD_KIND_INDEX; depth++) {
    if (depth == MAX_NESTING)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "indexes nested too deeply");
    struct sbd_index idx = {0};
    if (sbd_index_parse(cur.body, cur.len, &idx, err) < 0)
      return -1;
    if (depth == 0)
      img->platforms = index_platforms(&idx);
    const struct sbd_descriptor *d = NULL;
    if (sbd_index_select(&idx, src->platform, &d, err) < 0) {
      sbd_index_free(&idx);
      return -1;
    }
    free(img->platform);
    img->platform = sbd_platform_format(&d->platform);
    cleanup_free char *digest = xstrdup(d->digest);
    int64_t size = d->size;
    sbd_index_free(&idx);
    doc_free(&cur);
    if (read_manifest(src, img, digest, &cur, err) < 0)
      return -1;
    if ((int64_t)cur.len != size)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "manifest %s is %zu bytes, the index says %lld",
                           digest, cur.len, (long long)size);
    kind = sbd_manifest_kind_of(cur.media_type, cur.body, cur.len);
    img->listed_size += cur.len;
  }
  memcpy(img->manifest_digest, cur.digest, sizeof(img->manifest_digest));

  struct sbd_manifest m = {0};
  struct sbd_config c = {0};
  cleanup_doc struct doc config = {0};
  int ret = -1;
  if (sbd_manifest_parse(cur.body, cur.len, &m, err) < 0)
    goto out;
  if (read_blob(src, img, m.config.digest, m.config.size, &config, err) < 0)
    goto out;
  if (sbd_config_parse(config.body, config.len, &c, err) < 0)
    goto out;
  snprintf(img->config_digest, sizeof(img->config_digest), "%s", m.config.digest);
  img->created = c.created;
  img->listed_size += (uint64_t)m.config.size;
  if (img->platforms == NULL || img->platform == NULL) {
    /* A single manifest: containerd reports the config's os/arch. */
    struct sbd_platform p = {.os = xstrdup(c.os ? c.os : ""), .arch = xstrdup(c.arch ? c.arch : ""),
                             .variant = c.variant ? xstrdup(c.variant) : NULL};
    sbd_platform_normalize(&p);
    if (img->platform == NULL)
      img->platform = sbd_platform_format(&p);
    if (img->platforms == NULL) {
      free(p.variant);
      p.variant = NULL;
      img->platforms = sbd_platform_format(&p);
    }
    sbd_platform_free(&p);
  }
  ret = fill_layers(img, &m, &c, err);
out:
  sbd_manifest_free(&m);
  sbd_config_free(&c);
  return ret;
}

int sbd_image_resolve(const struct sbd_source *src, const char *given, struct sbd_image *img,
                      sbd_error_t *err)
{
  memset(img, 0, sizeof(*img));
  img->given = xstrdup(given);
  if (sbd_ref_parse(given, &img->ref, err) < 0)
    return -1;
  if (!sbd_ref_is_oci_layout(&img->ref) && src->registry == NULL)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "image %s: no registry client", given);
  if (resolve(src, img, err) < 0)
    return sbd_error_prefix(err, "image %s: ", given);
  return 0;
}

int sbd_image_fetch_layer(const struct sbd_source *src, const struct sbd_image *img, size_t i,
                          sbd_fetch_progress progress, void *opaque, char **path, bool *cached,
                          sbd_error_t *err)
{
  const struct sbd_layer_desc *l = &img->layers[i];
  if (sbd_ref_is_oci_layout(&img->ref)) {
    char *p = layout_blob_path(img, l->digest);
    struct stat st;
    if (stat(p, &st) < 0) {
      int e = errno;
      free(p);
      return sbd_error_set(err, SBD_EXIT_IMAGE, e, "the layout has no blob %s", l->digest);
    }
    *path = p;
    *cached = true;
    return 0;
  }
  if (fetch_to_cache(src, img, l->digest, l->size, progress, opaque, cached, err) < 0)
    return -1;
  *path = sbd_cache_path(src->cache, l->digest);
  return 0;
}

void sbd_image_free(struct sbd_image *img)
{
  free(img->given);
  sbd_ref_free(&img->ref);
  free(img->name);
  free(img->target_media_type);
  free(img->platform);
  free(img->platforms);
  for (size_t i = 0; i < img->n_layers; i++) {
    free(img->layers[i].media_type);
    free(img->layers[i].url);
  }
  free(img->layers);
  memset(img, 0, sizeof(*img));
}
