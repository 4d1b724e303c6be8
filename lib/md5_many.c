/* md5 of many small messages at once.
 *
 * A snapshot's checksum needs the md5 of every file, and a layer of Python
 * holds hundreds of thousands of small ones.  One md5 is a serial chain of
 * 32-bit operations (about 5 cycles a byte), but the chains of different
 * files are independent: with 16 lanes of 32 bits (AVX-512) or 8 (AVX2), each
 * lane of a vector register carries another file's state, so one pass of the
 * 64 steps (RFC 1321, section 3.4) advances 8 or 16 files by a block.
 *
 * Lanes are fed longest message first and refilled as they finish; a lane
 * with nothing left to do hashes a block of zeros that nobody reads.  CPUs
 * without these units, and builds for other architectures, take OpenSSL's
 * md5 one message at a time. */
#include "lib/digest.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SBD_MD5_VECTORS 1
#include <immintrin.h>
#endif

#define MAX_LANES 16

/* --- the portable path ------------------------------------------------------------- */

static void md5_one_by_one(struct sbd_md5_job *jobs, size_t n)
{
  cleanup_hash struct sbd_hash *h = sbd_hash_new(SBD_HASH_MD5);
  for (size_t i = 0; i < n; i++) {
    sbd_hash_update(h, jobs[i].data, jobs[i].len);
    sbd_hash_final(h, jobs[i].out);
  }
}

#ifdef SBD_MD5_VECTORS

/* The 64 constants: floor(|sin(i + 1)| * 2^32). */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint32_t md5_iv[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

/* The states of every lane, word by word (a[lane], b[lane], ...), so that one
 * vector load takes word w of every lane. */
struct lanes {
  _Alignas(64) uint32_t state[4][MAX_LANES];
  const uint8_t *block[MAX_LANES]; /* the 64 bytes each lane hashes next */
};

/* One message's walk through a lane: its whole blocks in place, then one or
 * two blocks of tail and padding. */
struct lane_msg {
  struct sbd_md5_job *job;
  const uint8_t *next;
  size_t whole_left;
  unsigned tail_blocks, tail_done;
  uint8_t tail[128];
};

static const uint8_t zero_block[64];

static void lane_load(struct lanes *ls, struct lane_msg *m, size_t lane, struct sbd_md5_job *job)
{
  m->job = job;
  m->next = job->data;
  m->whole_left = job->len / 64;
  size_t rem = job->len % 64;
  m->tail_blocks = rem + 9 > 64 ? 2 : 1;
  m->tail_done = 0;
  memset(m->tail, 0, sizeof(m->tail));
  if (rem)
    memcpy(m->tail, (const uint8_t *)job->data + job->len - rem, rem);
  m->tail[rem] = 0x80;
  uint64_t bits = (uint64_t)job->len * 8;
  uint8_t *len_at = m->tail + 64 * m->tail_blocks - 8;
  for (int i = 0; i < 8; i++)
    len_at[i] = (uint8_t)(bits >> (8 * i));
  for (int w = 0; w < 4; w++)
    ls->state[w][lane] = md5_iv[w];
}

/* Points the lane at its next block (an idle lane at zeros nobody reads). */
static void lane_next_block(struct lanes *ls, struct lane_msg *m, size_t lane)
{
  if (m->job == NULL) {
    ls->block[lane] = zero_block;
  } else if (m->whole_left > 0) {
    ls->block[lane] = m->next;
    m->next += 64;
    m->whole_left--;
  } else {
    ls->block[lane] = m->tail + 64 * m->tail_done;
    m->tail_done++;
  }
}

static bool lane_finished(const struct lane_msg *m)
{
  return m->job && m->whole_left == 0 && m->tail_done == m->tail_blocks;
}

static void lane_store_digest(const struct lanes *ls, size_t lane, uint8_t *out)
{
  for (int w = 0; w < 4; w++)
    for (int i = 0; i < 4; i++)
      out[4 * w + i] = (uint8_t)(ls->state[w][lane] >> (8 * i));
}

/* Message word order and rotations of the four rounds. */
#define MSG_INDEX(step)                                                                                 \
  ((step) < 16 ? (step) : (step) < 32 ? (5 * (step) + 1) % 16 : (step) < 48 ? (3 * (step) + 5) % 16     \
                                                                            : (7 * (step)) % 16)
static const int md5_rot[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

/* --- AVX-512: 16 lanes; ternary logic gives each round function in one op -------- */

__attribute__((target("avx512f"))) static void compress16(struct lanes *ls)
{
  /* Word w of the 16 blocks: two gathers of 8 lanes (64-bit addresses). */
  __m512i m[16];
  __m512i base_lo = _mm512_loadu_si512((const void *)&ls->block[0]);
  __m512i base_hi = _mm512_loadu_si512((const void *)&ls->block[8]);
  for (int w = 0; w < 16; w++) {
    __m512i off = _mm512_set1_epi64(4 * w);
    __m256i lo = _mm512_i64gather_epi32(_mm512_add_epi64(base_lo, off), NULL, 1);
    __m256i hi = _mm512_i64gather_epi32(_mm512_add_epi64(base_hi, off), NULL, 1);
    m[w] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  __m512i a = _mm512_load_si512((const void *)ls->state[0]);
  __m512i b = _mm512_load_si512((const void *)ls->state[1]);
  __m512i c = _mm512_load_si512((const void *)ls->state[2]);
  __m512i d = _mm512_load_si512((const void *)ls->state[3]);
  __m512i a0 = a, b0 = b, c0 = c, d0 = d;
  /* imm8 truth tables over (b, c, d): F = b ? c : d, G = d ? b : c,
   * H = b ^ c ^ d, I = c ^ (b | ~d). */
#define STEP16(f, s)                                                                                    \
  do {                                                                                                  \
    __m512i t = _mm512_add_epi32(a, _mm512_ternarylogic_epi32(b, c, d, f));                            \
    t = _mm512_add_epi32(t, _mm512_add_epi32(m[MSG_INDEX(s)], _mm512_set1_epi32((int)md5_k[s])));     \
    t = _mm512_add_epi32(b, _mm512_rolv_epi32(t, _mm512_set1_epi32(md5_rot[(s) / 16][(s) % 4])));      \
    a = d;                                                                                              \
    d = c;                                                                                              \
    c = b;                                                                                              \
    b = t;                                                                                              \
  } while (0)
  for (int s = 0; s < 16; s++)
    STEP16(0xca, s);
  for (int s = 16; s < 32; s++)
    STEP16(0xe4, s);
  for (int s = 32; s < 48; s++)
    STEP16(0x96, s);
  for (int s = 48; s < 64; s++)
    STEP16(0x39, s);
#undef STEP16
  _mm512_store_si512((void *)ls->state[0], _mm512_add_epi32(a, a0));
  _mm512_store_si512((void *)ls->state[1], _mm512_add_epi32(b, b0));
  _mm512_store_si512((void *)ls->state[2], _mm512_add_epi32(c, c0));
  _mm512_store_si512((void *)ls->state[3], _mm512_add_epi32(d, d0));
}

/* --- AVX2: 8 lanes; the round functions and rotations spelled out ----------------- */

__attribute__((target("avx2"))) static inline __m256i rol8(__m256i x, int s)
{
  return _mm256_or_si256(_mm256_sll_epi32(x, _mm_cvtsi32_si128(s)),
                         _mm256_srl_epi32(x, _mm_cvtsi32_si128(32 - s)));
}

__attribute__((target("avx2"))) static void compress8(struct lanes *ls)
{
  __m256i m[16];
  __m256i base_lo = _mm256_loadu_si256((const void *)&ls->block[0]);
  __m256i base_hi = _mm256_loadu_si256((const void *)&ls->block[4]);
  for (int w = 0; w < 16; w++) {
    __m256i off = _mm256_set1_epi64x(4 * w);
    __m128i lo = _mm256_i64gather_epi32(NULL, _mm256_add_epi64(base_lo, off), 1);
    __m128i hi = _mm256_i64gather_epi32(NULL, _mm256_add_epi64(base_hi, off), 1);
    m[w] = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  }
  __m256i a = _mm256_load_si256((const void *)ls->state[0]);
  __m256i b = _mm256_load_si256((const void *)ls->state[1]);
  __m256i c = _mm256_load_si256((const void *)ls->state[2]);
  __m256i d = _mm256_load_si256((const void *)ls->state[3]);
  __m256i a0 = a, b0 = b, c0 = c, d0 = d;
  const __m256i ones = _mm256_set1_epi32(-1);
#define STEP8(fexpr, s)                                                                                 \
  do {                                                                                                  \
    __m256i t = _mm256_add_epi32(a, (fexpr));                                                           \
    t = _mm256_add_epi32(t, _mm256_add_epi32(m[MSG_INDEX(s)], _mm256_set1_epi32((int)md5_k[s])));     \
    t = _mm256_add_epi32(b, rol8(t, md5_rot[(s) / 16][(s) % 4]));                                       \
    a = d;                                                                                              \
    d = c;                                                                                              \
    c = b;                                                                                              \
    b = t;                                                                                              \
  } while (0)
  /* F = d ^ (b & (c ^ d)); G = c ^ (d & (b ^ c)); H = b ^ c ^ d; I = c ^ (b | ~d) */
  for (int s = 0; s < 16; s++)
    STEP8(_mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d))), s);
  for (int s = 16; s < 32; s++)
    STEP8(_mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c))), s);
  for (int s = 32; s < 48; s++)
    STEP8(_mm256_xor_si256(_mm256_xor_si256(b, c), d), s);
  for (int s = 48; s < 64; s++)
    STEP8(_mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones))), s);
#undef STEP8
  _mm256_store_si256((void *)ls->state[0], _mm256_add_epi32(a, a0));
  _mm256_store_si256((void *)ls->state[1], _mm256_add_epi32(b, b0));
  _mm256_store_si256((void *)ls->state[2], _mm256_add_epi32(c, c0));
  _mm256_store_si256((void *)ls->state[3], _mm256_add_epi32(d, d0));
}

static int by_length_desc(const void *x, const void *y)
{
  const struct sbd_md5_job *a = *(struct sbd_md5_job *const *)x, *b = *(struct sbd_md5_job *const *)y;
  return a->len < b->len ? 1 : a->len > b->len ? -1 : 0;
}

static void md5_lanes(struct sbd_md5_job *jobs, size_t n, size_t n_lanes, void (*compress)(struct lanes *))
{
  /* Longest first: the lanes then run out of work at about the same time. */
  cleanup_free struct sbd_md5_job **order = xcalloc(n ? n : 1, sizeof(*order));
  for (size_t i = 0; i < n; i++)
    order[i] = &jobs[i];
  qsort(order, n, sizeof(*order), by_length_desc);

  /* A message much longer than the rest would end up alone in its lane, and a
   * lane advances at about 2/5 of the speed of one md5 on its own: the k
   * longest go one by one, k chosen to cost least by that ratio. */
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += order[i]->len;
  size_t k = 0, sum = 0;
  uint64_t best = UINT64_MAX;
  for (size_t i = 0;; i++) {
    size_t rest = total - sum, longest = i < n ? order[i]->len : 0;
    size_t per_lane = (rest + n_lanes - 1) / n_lanes;
    uint64_t cost = 2 * (uint64_t)sum + 5 * (uint64_t)(per_lane > longest ? per_lane : longest);
    if (cost < best) {
      best = cost;
      k = i;
    }
    if (i == n)
      break;
    sum += order[i]->len;
  }
  for (size_t i = 0; i < k; i++)
    md5_one_by_one(order[i], 1);

  struct lanes ls;
  memset(&ls, 0, sizeof(ls));
  struct lane_msg *msg = xcalloc(n_lanes, sizeof(*msg));
  size_t next = k, busy = 0;
  for (size_t l = 0; l < n_lanes; l++) {
    ls.block[l] = zero_block;
    if (next < n) {
      lane_load(&ls, &msg[l], l, order[next++]);
      busy++;
    }
  }
  for (size_t l = n_lanes; l < MAX_LANES; l++)
    ls.block[l] = zero_block;
  while (busy > 0) {
    for (size_t l = 0; l < n_lanes; l++)
      lane_next_block(&ls, &msg[l], l);
    compress(&ls);
    for (size_t l = 0; l < n_lanes; l++) {
      if (!lane_finished(&msg[l]))
        continue;
      lane_store_digest(&ls, l, msg[l].job->out);
      if (next < n) {
        lane_load(&ls, &msg[l], l, order[next++]);
      } else {
        msg[l].job = NULL;
        busy--;
      }
    }
  }
  free(msg);
}

#endif /* SBD_MD5_VECTORS */

bool sbd_md5_impl_available(enum sbd_md5_impl impl)
{
  switch (impl) {
  case SBD_MD5_AUTO:
  case SBD_MD5_ONE_BY_ONE:
    return true;
#ifdef SBD_MD5_VECTORS
  case SBD_MD5_AVX2:
    return __builtin_cpu_supports("avx2");
  case SBD_MD5_AVX512:
    return __builtin_cpu_supports("avx512f");
#endif
  default:
    return false;
  }
}

enum sbd_md5_impl sbd_md5_many(struct sbd_md5_job *jobs, size_t n, enum sbd_md5_impl impl)
{
  if (impl == SBD_MD5_AUTO)
    impl = sbd_md5_impl_available(SBD_MD5_AVX512) ? SBD_MD5_AVX512
           : sbd_md5_impl_available(SBD_MD5_AVX2) ? SBD_MD5_AVX2
                                                  : SBD_MD5_ONE_BY_ONE;
  if (!sbd_md5_impl_available(impl))
    impl = SBD_MD5_ONE_BY_ONE;
  if (n == 0) /* a chunk inside one long file: nothing to set up */
    return impl;
#ifdef SBD_MD5_VECTORS
  if (impl == SBD_MD5_AVX512) {
    md5_lanes(jobs, n, 16, compress16);
    return impl;
  }
  if (impl == SBD_MD5_AVX2) {
    md5_lanes(jobs, n, 8, compress8);
    return impl;
  }
#endif
  md5_one_by_one(jobs, n);
  return SBD_MD5_ONE_BY_ONE;
}
