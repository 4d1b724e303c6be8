#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t find(const struct sbd_plan *p, const char *chain_id)
{
  for (size_t i = 0; i < p->n_snapshots; i++)
    if (strcmp(p->snapshots[i].layer->chain_id, chain_id) == 0)
      return i;
  return SBD_PLAN_NO_PARENT;
}

int sbd_plan_build(const struct sbd_image *images, size_t n, struct sbd_plan *plan, sbd_error_t *err)
{
  (void)err;
  memset(plan, 0, sizeof(*plan));
  size_t cap = 0;
  for (size_t i = 0; i < n; i++)
    cap += images[i].n_layers;
  plan->snapshots = xcalloc(cap ? cap : 1, sizeof(*plan->snapshots));
  for (size_t i = 0; i < n; i++) {
    size_t parent = SBD_PLAN_NO_PARENT;
    for (size_t l = 0; l < images[i].n_layers; l++) {
      const struct sbd_layer_desc *d = &images[i].layers[l];
      size_t at = find(plan, d->chain_id);
      if (at == SBD_PLAN_NO_PARENT) {
        at = plan->n_snapshots++;
        plan->snapshots[at] = (struct sbd_plan_snapshot){
            .layer = d, .image = i, .layer_index = l, .parent = parent};
        plan->unique_bytes += (uint64_t)d->size;
      }
      parent = at;
    }
  }
  return 0;
}

void sbd_plan_free(struct sbd_plan *plan)
{
  free(plan->snapshots);
  memset(plan, 0, sizeof(*plan));
}
