/*
 * perflayer.cache._tinylfu_c: TinyLFUPolicy in C, decision-identical to the Python class in
 * perflayer/cache/_policy.py (read that module's essay first: regions, admission, sketch aging,
 * hill climbing, the read buffer). For every sequence of calls this class returns the same
 * victims in the same order and reaches the same window share as the Python one
 * (tests/cache/test_tinylfu_c.py checks it op by op).
 *
 * Why C: a new key's add cost ~12.8-15.7k instructions in Python, almost all of it OrderedDict
 * and dict work done from bytecode. Here the regions are intrusive doubly linked lists of nodes
 * (OrderedDict order: append at the MRU end, pop from the LRU end, move to the end), the
 * resident keys live in an open-addressing table of (hash, node) slots, the per-resident
 * frequency lives in the node, and the sketch's hash-keyed counts live in a second
 * open-addressing table of (hash, count) slots.
 *
 * Where this differs from the Python class (never for well-behaved keys):
 * - "is this the key just written" inside eviction compares nodes (identity), not `!=`: two
 *   resident keys are never equal unless their __eq__ disagrees with their __hash__.
 * - an exception from hash() or == while replaying the read buffer keeps the reads replayed
 *   before it (their tallies included) and drops the rest; Python leaves its protected-weight
 *   tally stale in that case.
 * - an update() that leaves one resident key heavier than max_weight and an empty window stops
 *   evicting here; the Python class raises StopIteration from next(iter(window)) (the core never
 *   gets there: it rejects a value over max_weight up front).
 * - weights and bounds are C int64 (a bound >= 2**63 is a ConfigError, a weight must be an int).
 * - on an allocation failure the sketch degrades (a count or the doorkeeper resize is dropped;
 *   an aging forgets every count) instead of raising in the middle of a write; so does the ghost (its tables not built: it
 *   turns off until the next clear or resize), where the Python class raises MemoryError.
 * - while keys are flagged by ghost admissions, drain's probation-hit pass looks each read up in
 *   the keys' table (hash() and == of resident keys), Python's in its set of flagged keys (==
 *   of flagged keys only): a hostile key can raise in one and not the other. The replay then
 *   reuses those lookups (no second hash() and ==), where Python looks every read up again.
 *
 * Ghost admission with regret (the Python essay's paragraph of that name): a flag per node (a
 * count of flagged nodes lets drain skip its pass while there are none), the ghost and regret
 * tables as uint64 slots (fingerprint << 32 | clock) built at the first admission test that
 * needs them, a 32-bit access clock advanced where `requests` is, the score and the
 * exploration counter. The shadows of the climber run without it (ghost 0).
 *
 * The shadow climber (climber="shadow"; the Python essay's "Hill climbing" and
 * benchmarks/prototypes/shadow_climber.py). Its two shadows are instances of this type
 * (adaptive=False, climber "sample", read buffer 1 << 16), held in sh_up / sh_down, which are
 * NULL while it is off: the hot paths pay one pointer test (drain, add's cache-aside branch,
 * climb). drain() first feeds every sampled read to both shadows (a hash, a multiply and a
 * compare per read, then two lookups, two ring appends and an add per shadow that misses),
 * decides at most once, then replays; add's cache-aside branch feeds the one sampled miss. The
 * shadows are called through their own internals under their own busy flag; an exception
 * inside (hash() or == of a key) drops that replay's reads unreplayed, as Python's _drain does.
 * clear() and resize() build the new shadows before changing anything (a MemoryError then
 * leaves the policy as it was) and release the old ones last. tp_traverse / tp_clear visit them,
 * so a key that refers to the policy and is held only by a shadow is still collected.
 *
 * Adoption (rule G's AutoPolicy; the Python class's methods of the same names): order() lists
 * the residents least valuable first, prepend() makes new keys probation's LRU keys (every check
 * and allocation first, so an error changes nothing), set_weights() reads and checks every new
 * weight before writing any, access() is a simulation's read-or-insert (its victims released,
 * never listed), and step() the same read-or-insert counting its victims another container
 * lacks (None on a hit).
 *
 * Safety. The type holds strong references to its keys (nodes, the read buffer, the last miss)
 * and supports the cycle collector. hash() and == may run Python code: every mutating method
 * sets `busy` first, so a re-entrant mutating call raises RuntimeError, and it only calls
 * Python code while its structure is consistent. hit/miss only append to the ring buffer (no
 * Python code runs before the ring is consistent: the dropped oldest read is released last),
 * so they are atomic under the GIL and callable at any time, even from a key's __eq__.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "_capi.h"

#define GOLDEN 0x9E3779B97F4A7C15ULL
#define COUNTER_MAX 15
#define SAMPLE_FACTOR 10
#define MIN_CAPACITY 16
#define ADMIT_MARGIN 1
#define PERCENT_WINDOW 0.01
#define PERCENT_PROTECTED 0.80
#define CLIMB_FACTOR 3.0
#define CLIMB_MIN 256
#define CLIMB_NOISE 0.5
#define CLIMB_RESTART 0.05
#define CLIMB_STEP 0.0625
#define CLIMB_DECAY 0.98
#define TRANSFER_MAX 1000
#define READ_BUFFER 1024
#define READ_BUFFER_MAX 4096
/* stored counts saturate here; every read caps them at COUNTER_MAX, so any value >= 16 works */
#define COUNT_SAT ((int64_t)1 << 30)
#define RING_MIN 64
#define FREELIST_MAX 256
/* ghost admission with regret (the Python essay's "Ghost admission with regret") */
#define GHOST_FACTOR 2 /* the ghost table: >= 2 x max_entries slots, a power of two */
#define REGRET_FACTOR 1 /* the regret table: >= max_entries slots */
#define REGRET_AGE 2    /* a displaced victim back within 2 x max_entries accesses: a regret */
#define SCORE_MAX 16    /* the feedback score stays in [-16, 16] */
#define EXPLORE 8       /* while it is negative, one eligible ghost admission in 8 goes ahead */
#define GHOST_BOOST 3   /* a ghost admission needs fc + 3 > fv + ADMIT_MARGIN */
#define GHOST_BITS_MAX 40 /* a larger table is an allocation failure (the ghost turns off) */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(addr, rw) __builtin_prefetch((addr), (rw))
#else
#define PREFETCH(addr, rw) ((void)(addr))
#endif

enum { R_WINDOW = 0, R_PROBATION = 1, R_PROTECTED = 2, R_NONE = 3 };

static PyObject *ConfigError = NULL;
static PyObject *STR_SAMPLE = NULL; /* "sample", the shadows' climber (they are not adaptive) */
static PyObject *STR_SHADOW = NULL; /* "shadow", the default climber */

typedef struct Node {
    struct Node *prev;
    struct Node *next;
    PyObject *key; /* strong */
    uint64_t hash;
    int64_t weight;
    int64_t freq;
    int region;
    int flag; /* ghost-admitted, no probation hit yet */
} Node;

typedef struct {
    Node head; /* sentinel of a circular list: head.next is the LRU end, head.prev the MRU end */
    Py_ssize_t len;
} Region;

typedef struct {
    uint64_t hash;
    uintptr_t val; /* 0: empty */
} Slot;

/* a buffered read's lookup, kept by drain's probation-hit pass for its replay */
typedef struct {
    struct Node *node; /* NULL: not resident */
    uint64_t hash;
} Found;

typedef struct {
    Slot *slots;
    int bits;
    Py_ssize_t used;
    /* the slot of hash h is (h * mul) mod 2**64 >> (64 - bits): mul is GOLDEN, or in a shadow
       of the shadow climber GOLDEN << k. Why: a shadow holds only keys whose (h * GOLDEN) starts
       with k zero bits (its sampling test), so it indexes by the bits after them, or every key
       would crowd into the first 1 / 2**k of the slots ((h * GOLDEN) << k == h * (GOLDEN << k)
       mod 2**64: the real policy's lookups cost what they did) */
    uint64_t mul;
} Table;

typedef struct Policy {
    PyObject_HEAD
    Region win;
    Region prob;
    Region prot;
    Table keys; /* the resident keys: hash -> Node */
    /* the frequency sketch */
    Table counts; /* hash -> count, for non-resident keys */
    uint8_t *door;
    int dbits;
    int64_t additions;
    int64_t capacity;
    int64_t period;
    /* the read buffer: a ring of at most rmax keys (strong), grown on demand; spare is the
       second array drain() swaps in */
    PyObject **ring;
    Py_ssize_t ralloc;
    Py_ssize_t rhead;
    Py_ssize_t rlen;
    Py_ssize_t rmax;
    PyObject **spare;
    Py_ssize_t salloc;
    PyObject *last_miss; /* strong; NULL: no key */
    /* tallies */
    int64_t ww;
    int64_t pw;
    int64_t total;
    int64_t max_entries; /* -1: None */
    int64_t max_weight;  /* -1: None */
    PyObject *adaptive_obj;
    int adaptive;
    int busy;
    /* the hill climber */
    int64_t hits;
    int64_t requests;
    double prev_rate;
    int64_t adjust;
    int64_t wmax;
    int64_t pmax;
    double step;
    int64_t climb_sample;
    /* the shadow climber (see "The shadow climber" above); sh_up == NULL: not active */
    PyObject *climber_obj;    /* the climber= string given */
    int shadow_mode;          /* climber == "shadow" */
    struct Policy *sh_up;     /* the shadow whose window is the real share + the probe */
    struct Policy *sh_down;   /* ... - the probe */
    uint64_t sh_limit;        /* a key is sampled iff (hash * GOLDEN) mod 2**64 <= sh_limit */
    int64_t sh_cap;           /* the shadows' capacity */
    int64_t sh_step;          /* the real window's move, in entries */
    int64_t sh_seen;          /* sampled accesses since the last decision */
    int64_t dis_up;           /* disagreements won by the larger window (decayed) */
    int64_t dis_down;
    int64_t new_up;           /* disagreements since the last decision (for the long pair) */
    int64_t new_down;
    int64_t long_up;          /* the long-horizon pair: decayed 1/32 a decision, never reset */
    int64_t long_down;
    double sh_probe;          /* the shadows' distance from the real share */
    int64_t climber_moves;
    /* ghost admission with regret: the tables are NULL until the first admission test that
       needs them (gage 0: off, never built) */
    int ghost;          /* ghost= given */
    int64_t gage;       /* the ghost's age limit: max_entries while on and count-bounded, else 0 */
    uint64_t *gtab;     /* 2**gbits slots of fingerprint << 32 | clock (0: empty) */
    int gbits;
    uint64_t *rtab;     /* the regret table, 2**rbits slots alike */
    int rbits;
    uint32_t tick;      /* the access clock: advanced as requests is, never reset */
    int64_t gscore;     /* the feedback score, in [-SCORE_MAX, SCORE_MAX] */
    int64_t gexplore;   /* eligible ghost admissions tried while the score was negative */
    int64_t ghost_admits;
    int64_t regrets;
    Py_ssize_t nflag;   /* flagged resident nodes: drain() skips its pass while 0 */
    /* spare nodes */
    Node *freelist;
    int nfree;
    /* drain's scratch: the probation-hit pass's lookups (falloc entries; NULL: none yet) */
    Found *found;
    Py_ssize_t falloc;
} Policy;

/* -- small helpers ------------------------------------------------------------------------- */

static inline int64_t i64min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t i64max(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t cap15(int64_t c) { return c < COUNTER_MAX ? c : COUNTER_MAX; }

static inline Py_ssize_t home(uint64_t h, const Table *t)
{
    return (Py_ssize_t)((h * t->mul) >> (64 - t->bits));
}

static inline int64_t maximum(Policy *self)
{
    if (self->max_weight >= 0) {
        return self->max_weight;
    }
    return self->max_entries >= 0 ? self->max_entries : 0;
}

static inline int over(Policy *self)
{
    return (self->max_entries >= 0 && self->keys.used > self->max_entries) ||
           (self->max_weight >= 0 && self->total > self->max_weight);
}

static inline int64_t window_size(Policy *self)
{
    return self->max_weight >= 0 ? self->ww : (int64_t)self->win.len;
}

/* the shadow climber's hooks (defined below, after the writes they call) */
static int observe_key(Policy *self, PyObject *key, uint64_t h);
static int observe_end(Policy *self);
static int observe_one(Policy *self, PyObject *key, uint64_t h);

/* Is the key of hash ``h`` one the shadow climber samples? A multiply and a compare. */
static inline int sampled(Policy *self, uint64_t h) { return h * GOLDEN <= self->sh_limit; }

/* -- regions ------------------------------------------------------------------------------- */

static inline void r_init(Region *r)
{
    r->head.prev = r->head.next = &r->head;
    r->len = 0;
}

static inline void r_append(Region *r, Node *n, int id)
{
    Node *last = r->head.prev;
    n->prev = last;
    n->next = &r->head;
    last->next = n;
    r->head.prev = n;
    r->len++;
    n->region = id;
}

/* Insert ``n`` at the LRU end (OrderedDict's move_to_end(last=False) of a new key). */
static inline void r_prepend(Region *r, Node *n, int id)
{
    Node *first = r->head.next;
    n->prev = &r->head;
    n->next = first;
    first->prev = n;
    r->head.next = n;
    r->len++;
    n->region = id;
}

static inline void r_unlink(Region *r, Node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    r->len--;
}

static inline Node *r_first(Region *r) { return r->len ? r->head.next : NULL; }

static inline void r_move_to_end(Region *r, Node *n)
{
    if (r->head.prev != n) {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        Node *last = r->head.prev;
        n->prev = last;
        n->next = &r->head;
        last->next = n;
        r->head.prev = n;
    }
}

static inline Region *region_of(Policy *self, Node *n)
{
    switch (n->region) {
    case R_WINDOW:
        return &self->win;
    case R_PROBATION:
        return &self->prob;
    default:
        return &self->prot;
    }
}

/* -- nodes --------------------------------------------------------------------------------- */

static Node *node_alloc(Policy *self)
{
    Node *n = self->freelist;
    if (n != NULL) {
        self->freelist = n->next;
        self->nfree--;
        return n;
    }
    n = PyMem_Malloc(sizeof(Node));
    if (n == NULL) {
        PyErr_NoMemory();
    }
    return n;
}

static void node_free(Policy *self, Node *n)
{
    if (self->nfree < FREELIST_MAX) {
        n->next = self->freelist;
        self->freelist = n;
        self->nfree++;
    }
    else {
        PyMem_Free(n);
    }
}

/* -- open-addressing tables ---------------------------------------------------------------- */

/* One table type serves the resident keys (val: the Node *) and the sketch's counts (val: the
   count, >= 1): linear probing from a Fibonacci hash of the key's hash, at most half full, no
   tombstones (backward-shift deletion). val 0 marks an empty slot. */

static int table_init(Table *t, int bits)
{
    Slot *s = PyMem_Calloc((size_t)1 << bits, sizeof(Slot));
    if (s == NULL) {
        return -1; /* no exception set */
    }
    PyMem_Free(t->slots);
    t->slots = s;
    t->bits = bits;
    t->used = 0;
    return 0;
}

static void table_clear(Table *t)
{
    if (t->slots != NULL) {
        memset(t->slots, 0, ((size_t)1 << t->bits) * sizeof(Slot));
    }
    t->used = 0;
}

static void table_place(Table *t, uint64_t h, uintptr_t val)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t);
    while (t->slots[i].val != 0) {
        i = (i + 1) & mask;
    }
    t->slots[i].hash = h;
    t->slots[i].val = val;
    t->used++;
}

/* Rehash ``t`` into 2**bits slots; -1 (no exception set) if the memory is not there. No Python
   code runs. */
static int table_grow(Table *t, int bits)
{
    Table bigger = {NULL, 0, 0, t->mul};
    if (table_init(&bigger, bits) < 0) {
        return -1;
    }
    Py_ssize_t size = (Py_ssize_t)1 << t->bits;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (t->slots[i].val != 0) {
            table_place(&bigger, t->slots[i].hash, t->slots[i].val);
        }
    }
    PyMem_Free(t->slots);
    *t = bigger;
    return 0;
}

/* Make room for one more count; -1 (no exception set) if that needs memory that is not there.
   No Python code runs. */
static int table_reserve(Table *t)
{
    if (2 * (t->used + 1) <= ((Py_ssize_t)1 << t->bits)) {
        return 0;
    }
    return table_grow(t, t->bits + 1);
}

/* Does a resident keys' table of 2**bits slots hold ``n`` keys? At most a third full below
   2**SPARSE_BITS slots (1 MB), half full above. Why a third: at half, a cache of 500 entries
   (and each of its two shadows) ran its table at 49% load (501 keys in 1,024 slots, where 1,024
   and 2,048 entries run at 25%), and the lookups' and deletions' probes through its long
   clusters cost ~20% of an access (benchmarks/tinylfu_c: access of a new key 0.75x, of a Zipf
   key 0.87x at 500 entries); the bound keeps the extra memory under 1 MB a table. */
#define SPARSE_BITS 16
static inline int keys_fit(Py_ssize_t n, int bits)
{
    Py_ssize_t size = (Py_ssize_t)1 << bits;
    return bits < SPARSE_BITS ? 3 * n <= size : 2 * n <= size;
}

/* Make room for one more resident key; -1 (no exception set) as table_reserve. */
static int keys_reserve(Table *t)
{
    if (keys_fit(t->used + 1, t->bits)) {
        return 0;
    }
    return table_grow(t, t->bits + 1);
}

/* Make room for ``extra`` more resident keys at once (prepend); -1 (no exception set) as above. */
static int keys_reserve_n(Table *t, Py_ssize_t extra)
{
    int bits = t->bits;
    while (bits < 62 && !keys_fit(t->used + extra, bits)) {
        bits++;
    }
    if (!keys_fit(t->used + extra, bits)) {
        return -1;
    }
    return bits == t->bits ? 0 : table_grow(t, bits);
}

static void table_delete_at(Table *t, Py_ssize_t i)
{
    Slot *slots = t->slots;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (slots[j].val == 0) {
            break;
        }
        Py_ssize_t k = home(slots[j].hash, t);
        /* slot j may move to i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            slots[i] = slots[j];
            i = j;
        }
    }
    slots[i].val = 0;
    t->used--;
}

/* -- keys: hash and == ---------------------------------------------------------------------- */

/* hash(key) is _capi.h's key_hash, -1 with an exception set. Why: a str's hash is a field once
   computed (the cache's dict computed it, and every replay of the read hashes it again): read it
   without PyObject_Hash's indirect call. */

/* str.__eq__ of two exact, ready strs (CPython's unicode_eq: canonical forms compare by kind,
   length and bytes); runs no Python code. */
static inline int str_eq(PyObject *a, PyObject *b)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(a);
    if (len != PyUnicode_GET_LENGTH(b) || PyUnicode_KIND(a) != PyUnicode_KIND(b)) {
        return 0;
    }
    return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)len * PyUnicode_KIND(a)) == 0;
}

/* PyObject_RichCompareBool(stored, key, Py_EQ) (identity first): 1, 0, or -1 with an exception
   set. ``stored`` (a reference the policy holds) is kept alive across a Python __eq__. */
static inline int key_eq(PyObject *stored, PyObject *key)
{
    if (stored == key) {
        return 1;
    }
    if (PyUnicode_CheckExact(stored) && PyUnicode_CheckExact(key) && PyUnicode_IS_READY(stored) &&
        PyUnicode_IS_READY(key)) {
        /* why: two exact strs compare as str.__eq__ does, without the call or the reference
           count writes into the stored key's (cold) object */
        return str_eq(stored, key);
    }
    Py_INCREF(stored);
    int r = PyObject_RichCompareBool(stored, key, Py_EQ);
    Py_DECREF(stored);
    return r;
}

/* -- the resident keys --------------------------------------------------------------------- */

/* Find ``key``: 1 found (*out), 0 absent, -1 an exception from ==. Holds a reference to the
   compared key across ==; nothing can mutate the table meanwhile (busy). */
static int keys_lookup(Policy *self, PyObject *key, uint64_t h, Node **out)
{
    Table *t = &self->keys;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t);
    for (;;) {
        Node *n = (Node *)t->slots[i].val;
        if (n == NULL) {
            *out = NULL;
            return 0;
        }
        if (t->slots[i].hash == h) {
            int r = key_eq(n->key, key);
            if (r < 0) {
                return -1;
            }
            if (r) {
                *out = n;
                return 1;
            }
        }
        i = (i + 1) & mask;
    }
}

static void keys_remove(Policy *self, Node *n)
{
    Table *t = &self->keys;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(n->hash, t);
    while (t->slots[i].val != (uintptr_t)n) {
        i = (i + 1) & mask;
    }
    table_delete_at(t, i);
}

/* -- the sketch's counts ------------------------------------------------------------------- */

/* Return the slot of ``h``'s count or NULL. */
static inline Slot *counts_find(Policy *self, uint64_t h)
{
    Table *t = &self->counts;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t);
    for (;;) {
        Slot *s = &t->slots[i];
        if (s->val == 0) {
            return NULL;
        }
        if (s->hash == h) {
            return s;
        }
        i = (i + 1) & mask;
    }
}

/* Remove ``h``'s count and return it (0 if none). */
static inline int64_t counts_pop(Policy *self, uint64_t h)
{
    Slot *s = counts_find(self, h);
    if (s == NULL) {
        return 0;
    }
    int64_t c = (int64_t)s->val;
    table_delete_at(&self->counts, s - self->counts.slots);
    return c;
}

/* Set ``h``'s count to ``c`` (>= 1). Out of memory, a new count may be dropped (degrade). */
static void counts_set(Policy *self, uint64_t h, int64_t c)
{
    if (c > COUNT_SAT) {
        c = COUNT_SAT;
    }
    Slot *s = counts_find(self, h);
    if (s != NULL) {
        s->val = (uintptr_t)c;
        return;
    }
    Table *t = &self->counts;
    if (table_reserve(t) < 0 && t->used + 2 > ((Py_ssize_t)1 << t->bits)) {
        return;
    }
    table_place(t, h, (uintptr_t)c);
}

static inline Py_ssize_t door_index(Policy *self, uint64_t h)
{
    return (Py_ssize_t)((h * GOLDEN) >> (64 - self->dbits));
}

/* FrequencySketch.increment without the additions tally. */
static inline void sketch_increment(Policy *self, uint64_t h)
{
    Slot *s = counts_find(self, h);
    if (s == NULL) {
        Py_ssize_t i = door_index(self, h);
        if (self->door[i]) {
            counts_set(self, h, 1);
        }
        else {
            self->door[i] = 1;
        }
    }
    else if (s->val < (uintptr_t)COUNT_SAT) {
        s->val++;
    }
}

/* FrequencySketch.put */
static inline void sketch_put(Policy *self, uint64_t h, int64_t estimate)
{
    int64_t c = estimate - self->door[door_index(self, h)];
    if (c > 0) {
        counts_set(self, h, c);
    }
}

/* Start loading the sketch's memory for hash ``h`` (its home slot in the counts, its
   doorkeeper byte): an add reads both, a drop or discard writes them. */
static inline void prefetch_sketch(Policy *self, uint64_t h)
{
    PREFETCH(&self->counts.slots[home(h, &self->counts)], 1);
    PREFETCH(&self->door[door_index(self, h)], 1);
}

static int bit_length(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

/* -- ghost admission with regret ----------------------------------------------------------- */

/* Forget the ghost and regret tables (the next admission test builds them) and set the age limit
   for the entry bound ``me`` (-1: None). */
static void ghost_reset(Policy *self, int64_t me)
{
    PyMem_Free(self->gtab);
    PyMem_Free(self->rtab);
    self->gtab = self->rtab = NULL;
    self->gage = (self->ghost && me > 0) ? me : 0;
}

static int table_bits(uint64_t slots)
{
    int b = bit_length((slots ? slots : 1) - 1);
    return b < 1 ? 1 : b;
}

/* Build both empty tables for the age limit; on an allocation failure the ghost turns off
   (gage 0) instead of failing the write: only hit ratios suffer. 0 if built. */
static int ghost_build(Policy *self)
{
    uint64_t cap = (uint64_t)self->gage;
    int gb = table_bits(GHOST_FACTOR * cap);
    int rb = table_bits(REGRET_FACTOR * cap);
    if (gb <= GHOST_BITS_MAX && rb <= GHOST_BITS_MAX) {
        self->gtab = PyMem_Calloc((size_t)1 << gb, sizeof(uint64_t));
        self->rtab = PyMem_Calloc((size_t)1 << rb, sizeof(uint64_t));
    }
    if (self->gtab == NULL || self->rtab == NULL) {
        ghost_reset(self, -1);
        return -1;
    }
    self->gbits = gb;
    self->rbits = rb;
    return 0;
}

/* Event 1 for a candidate ``c`` the frequency test rejected: 1 for a ghost admission (``c`` is
   flagged), else 0 and ``c`` is remembered in the ghost. */
static int ghost_admit(Policy *self, Node *c, int64_t fc, int64_t fv)
{
    if (self->gage == 0 || (self->gtab == NULL && ghost_build(self) < 0)) {
        return 0;
    }
    uint64_t x = c->hash * GOLDEN;
    size_t gi = (size_t)(x >> (64 - self->gbits));
    uint32_t fp = (uint32_t)x | 1;
    uint64_t v = self->gtab[gi];
    if ((uint32_t)(v >> 32) == fp && (uint64_t)(uint32_t)(self->tick - (uint32_t)v) <
                                         (uint64_t)self->gage &&
        fc + GHOST_BOOST > fv + ADMIT_MARGIN) {
        int ok = 1;
        if (self->gscore < 0) {
            /* a negative score still lets one eligible admission in EXPLORE through */
            self->gexplore++;
            ok = self->gexplore % EXPLORE == 0;
        }
        if (ok) {
            self->gtab[gi] = 0;
            self->ghost_admits++;
            c->flag = 1;
            self->nflag++;
            return 1;
        }
    }
    self->gtab[gi] = ((uint64_t)fp << 32) | self->tick;
    return 0;
}

/* Event 2: remember the victim of hash ``h`` displaced by a ghost admission. */
static inline void regret_put(Policy *self, uint64_t h)
{
    uint64_t x = h * GOLDEN;
    self->rtab[x >> (64 - self->rbits)] = ((uint64_t)((uint32_t)x | 1) << 32) | self->tick;
}

/* Event 4: a miss of the key of hash ``h`` (before the replay and the clock). */
static inline void regret_check(Policy *self, uint64_t h)
{
    uint64_t x = h * GOLDEN;
    size_t ri = (size_t)(x >> (64 - self->rbits));
    uint64_t v = self->rtab[ri];
    if (v && (uint32_t)(v >> 32) == ((uint32_t)x | 1)) {
        self->rtab[ri] = 0;
        if ((uint64_t)(uint32_t)(self->tick - (uint32_t)v) <
            (uint64_t)REGRET_AGE * (uint64_t)self->gage) {
            self->regrets++;
            if (self->gscore > -SCORE_MAX) {
                self->gscore--;
            }
        }
    }
}

/* FrequencySketch._size; returns -1 (no exception set) if the doorkeeper was not resized. */
static int sketch_size(Policy *self, int64_t capacity)
{
    self->capacity = i64max(MIN_CAPACITY, capacity);
    self->period = SAMPLE_FACTOR * self->capacity;
    int bits = bit_length((uint64_t)(8 * self->capacity - 1));
    if (bits < 10) {
        bits = 10;
    }
    if (self->door != NULL && bits == self->dbits) {
        /* why: an aging at the same capacity clears the doorkeeper in place (no free and
           calloc of the same size every period) */
        memset(self->door, 0, (size_t)1 << bits);
        return 0;
    }
    uint8_t *door = PyMem_Calloc((size_t)1 << bits, 1);
    if (door == NULL) {
        if (self->door != NULL) {
            /* degrade: keep the old size, cleared */
            memset(self->door, 0, (size_t)1 << self->dbits);
        }
        return -1;
    }
    PyMem_Free(self->door);
    self->door = door;
    self->dbits = bits;
    return 0;
}

/* Keep only the ``n`` counts above 1 of ``t``, halved, at its size: the survivors are copied
   out, the slots cleared and the survivors placed again. Why not in place: most counts are 1
   and die, and a deletion each (with its backward shift) cost more than the copy, the memset
   and the few placements. Out of memory the sketch degrades: every count is forgotten. */
static void sketch_age_keep(Table *t, Py_ssize_t n)
{
    Slot *keep = n ? PyMem_Malloc((size_t)n * sizeof(Slot)) : NULL;
    if (n && keep == NULL) {
        table_clear(t);
        return;
    }
    Py_ssize_t size = (Py_ssize_t)1 << t->bits;
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        uintptr_t c = t->slots[i].val;
        if (c > 1) {
            keep[j].hash = t->slots[i].hash;
            keep[j].val = (uintptr_t)(cap15((int64_t)c) >> 1);
            j++;
        }
    }
    table_clear(t);
    for (j = 0; j < n; j++) {
        table_place(t, keep[j].hash, keep[j].val);
    }
    PyMem_Free(keep);
}

/* FrequencySketch.age */
static void sketch_age(Policy *self, int64_t capacity)
{
    Table *old = &self->counts;
    Py_ssize_t size = (Py_ssize_t)1 << old->bits;
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (old->slots[i].val > 1) {
            n++;
        }
    }
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * (n + 1)) {
        bits++;
    }
    int peak = bits; /* a table holding the survivors and one period's new counts */
    while (((Py_ssize_t)1 << peak) < 2 * (n + self->period + 1)) {
        peak++;
    }
    if (old->bits <= peak + 1) {
        /* why: rebuilt at the survivors' size, the table grew back by doubling within the
           period (a full rehash and a fresh calloc each time, page faults included: table_grow
           ran in a steady state of one key in, one out); a table no larger than a period's
           counts can make it keeps its size. The same counts either way: the slots' order is
           never observed. */
        sketch_age_keep(old, n);
        self->additions = 0;
        (void)sketch_size(self, capacity);
        return;
    }
    Table aged = {NULL, 0, 0, old->mul};
    if (table_init(&aged, bits) == 0) {
        for (Py_ssize_t i = 0; i < size; i++) {
            int64_t c = (int64_t)old->slots[i].val;
            if (c > 1) {
                table_place(&aged, old->slots[i].hash, (uintptr_t)(cap15(c) >> 1));
            }
        }
        PyMem_Free(old->slots);
        *old = aged;
    }
    else {
        table_clear(old); /* degrade: forget every count */
    }
    self->additions = 0;
    (void)sketch_size(self, capacity);
}

/* -- sizing and climbing ------------------------------------------------------------------- */

static int64_t capacity_hint(Policy *self)
{
    int64_t n = (int64_t)self->keys.used + 64;
    return self->max_entries < 0 ? n : i64min(self->max_entries, n);
}

/* The window's target for a share ``window`` of the maximum ``m``. */
static int64_t window_units(double window, int64_t m)
{
    return m ? i64max(1, (int64_t)rint(window * (double)m)) : 0;
}

static void size_regions(Policy *self, double window)
{
    int64_t m = maximum(self);
    self->wmax = window_units(window, m);
    self->pmax = (int64_t)(PERCENT_PROTECTED * (double)(m - self->wmax));
    self->step = CLIMB_STEP * (double)m;
    self->adjust = 0;
    self->hits = self->requests = 0;
    self->prev_rate = 0.0;
    self->climb_sample = i64max(CLIMB_MIN, (int64_t)(CLIMB_FACTOR * (double)self->capacity));
}

static int64_t protected_cap(Policy *self)
{
    return (int64_t)(PERCENT_PROTECTED * (double)(maximum(self) - self->wmax));
}

static void demote_protected(Policy *self)
{
    int weighted = self->max_weight >= 0;
    while (self->prot.len && (weighted ? self->pw : (int64_t)self->prot.len) > self->pmax) {
        Node *n = r_first(&self->prot);
        r_unlink(&self->prot, n);
        self->pw -= n->weight;
        r_append(&self->prob, n, R_PROBATION);
    }
}

static void increase_window(Policy *self)
{
    int64_t quota = i64min(self->adjust, i64max(0, maximum(self) - 1 - self->wmax));
    self->pmax = i64max(0, self->pmax - quota);
    self->wmax += quota;
    demote_protected(self);
    int weighted = self->max_weight >= 0;
    int moved = 0;
    while (quota > 0 && moved < TRANSFER_MAX) {
        Region *src = self->prob.len ? &self->prob : &self->prot;
        if (!src->len) {
            break;
        }
        Node *n = r_first(src);
        r_unlink(src, n);
        if (src == &self->prot) {
            self->pw -= n->weight;
        }
        r_append(&self->win, n, R_WINDOW);
        self->ww += n->weight;
        quota -= weighted ? n->weight : 1;
        moved++;
    }
    if (quota > 0) {
        self->wmax -= quota;
        self->pmax = i64min(self->pmax + quota, protected_cap(self));
    }
    self->adjust = 0;
}

static void decrease_window(Policy *self)
{
    int64_t quota = i64min(-self->adjust, i64max(0, self->wmax - 1));
    self->wmax -= quota;
    self->pmax = i64min(self->pmax + quota, protected_cap(self));
    int moved = 0;
    while (self->win.len && window_size(self) > self->wmax) {
        if (moved >= TRANSFER_MAX) {
            break;
        }
        Node *n = r_first(&self->win);
        r_unlink(&self->win, n);
        self->ww -= n->weight;
        r_append(&self->prob, n, R_PROBATION);
        moved++;
    }
    self->adjust = 0;
}

static void climb(Policy *self)
{
    if (self->sh_up != NULL) {
        /* the shadow climber moves the window instead: only the sample is reset */
        self->hits = self->requests = 0;
        return;
    }
    int64_t requests = self->requests;
    double rate = (double)self->hits / (double)requests;
    double change = rate - self->prev_rate;
    if (fabs(change) < CLIMB_NOISE / pow((double)requests, 0.5)) {
        self->prev_rate = rate;
        self->hits = self->requests = 0;
        return;
    }
    double amount = change >= 0 ? self->step : -self->step;
    if (fabs(change) >= CLIMB_RESTART) {
        self->step = CLIMB_STEP * (double)maximum(self) * (amount >= 0 ? 1.0 : -1.0);
    }
    else {
        self->step = CLIMB_DECAY * amount;
    }
    self->prev_rate = rate;
    self->hits = self->requests = 0;
    self->adjust = (int64_t)amount;
    if (self->adjust > 0) {
        increase_window(self);
    }
    else if (self->adjust < 0) {
        decrease_window(self);
    }
}

static void halve_region(Region *r)
{
    for (Node *n = r->head.next; n != &r->head; n = n->next) {
        n->freq = cap15(n->freq) >> 1;
    }
}

/* TinyLFUPolicy._maintain; ``pending`` is the frequency of a key being added (not yet in a
   region), halved with the residents'. */
static void maintain(Policy *self, int64_t *pending)
{
    if (self->additions >= self->period) {
        sketch_age(self, capacity_hint(self));
        halve_region(&self->win);
        halve_region(&self->prob);
        halve_region(&self->prot);
        if (pending != NULL) {
            *pending = cap15(*pending) >> 1;
        }
        self->climb_sample = i64max(CLIMB_MIN, (int64_t)(CLIMB_FACTOR * (double)self->capacity));
    }
    if (self->adaptive && self->requests >= self->climb_sample) {
        climb(self);
    }
}

/* -- the read buffer ----------------------------------------------------------------------- */

/* Append ``key`` (a new reference is taken); drop the oldest when full. Runs no Python code
   until the ring is consistent. */
static void ring_push(Policy *self, PyObject *key)
{
    PyObject *dropped = NULL;
    if (self->rlen < self->ralloc) {
        Py_ssize_t i = self->rhead + self->rlen;
        if (i >= self->ralloc) {
            i -= self->ralloc;
        }
        Py_INCREF(key);
        self->ring[i] = key;
        self->rlen++;
    }
    else if (self->ralloc < self->rmax) {
        /* grow: unwrap into a larger array */
        Py_ssize_t alloc = self->ralloc ? self->ralloc * 2 : RING_MIN;
        if (alloc > self->rmax) {
            alloc = self->rmax;
        }
        PyObject **items = PyMem_Malloc((size_t)alloc * sizeof(PyObject *));
        if (items == NULL) {
            return; /* lossy buffer: drop this read */
        }
        for (Py_ssize_t j = 0; j < self->rlen; j++) {
            Py_ssize_t i = self->rhead + j;
            if (i >= self->ralloc) {
                i -= self->ralloc;
            }
            items[j] = self->ring[i];
        }
        PyMem_Free(self->ring);
        self->ring = items;
        self->ralloc = alloc;
        self->rhead = 0;
        Py_INCREF(key);
        self->ring[self->rlen++] = key;
    }
    else {
        /* full: the oldest read is dropped */
        dropped = self->ring[self->rhead];
        Py_INCREF(key);
        self->ring[self->rhead] = key;
        self->rhead++;
        if (self->rhead == self->ralloc) {
            self->rhead = 0;
        }
    }
    Py_XDECREF(dropped);
}

static PyObject *Policy_record(Policy *self, PyObject *key)
{
    ring_push(self, key);
    Py_RETURN_NONE;
}

/* The buffered reads, detached from the policy. */
typedef struct {
    PyObject **items;
    Py_ssize_t alloc;
    Py_ssize_t head;
    Py_ssize_t len;
} Reads;

static inline PyObject *reads_at(Reads *r, Py_ssize_t j)
{
    Py_ssize_t i = r->head + j;
    return r->items[i < r->alloc ? i : i - r->alloc];
}

/* Take the buffered reads out and swap in the spare array: reads recorded meanwhile (by code
   run from hash() or ==, or another thread) go to the new ring. */
static Reads ring_detach(Policy *self)
{
    Reads r = {self->ring, self->ralloc, self->rhead, self->rlen};
    self->ring = self->spare;
    self->ralloc = self->salloc;
    self->spare = NULL;
    self->salloc = 0;
    self->rhead = 0;
    self->rlen = 0;
    return r;
}

/* Release detached reads (Python code may run) and keep their array as the spare. */
static void reads_release(Policy *self, Reads *r)
{
    for (Py_ssize_t j = 0; j < r->len; j++) {
        Py_DECREF(reads_at(r, j));
    }
    if (self->spare == NULL) {
        self->spare = r->items;
        self->salloc = r->alloc;
    }
    else {
        PyMem_Free(r->items);
    }
}

/* Empty the ring; the references are released after it is consistent. */
static void ring_clear(Policy *self)
{
    if (self->rlen) {
        Reads r = ring_detach(self);
        reads_release(self, &r);
    }
}

static inline void set_last_miss(Policy *self, PyObject *key, PyObject **release)
{
    /* the old reference goes to *release, dropped by the caller once consistent */
    *release = self->last_miss;
    Py_XINCREF(key);
    self->last_miss = key;
}

/* TinyLFUPolicy._drain: replay the buffered reads in order. -1 on an exception from hash() or
   == (the reads before it stay replayed, the rest are dropped). */
static int drain(Policy *self)
{
    /* copy-then-clear, as _drain does */
    Reads reads = ring_detach(self);
    Py_ssize_t n = reads.len;
    Py_ssize_t misses = 0;
    PyObject *last_miss = NULL;
    Py_ssize_t j;
    int err = 0;
    Py_ssize_t nfound = 0; /* the first nfound reads' lookups are in self->found */
    if (self->nflag > 0) {
        /* a probation hit proves a ghost-admitted key: the score gains, before the shadow
           climber's decision can move keys between regions; an exception drops the reads
           unreplayed */
        Found *found = self->found;
        if (self->falloc < n) {
            Found *grown = PyMem_Realloc(self->found, (size_t)n * sizeof(Found));
            if (grown != NULL) {
                self->found = found = grown;
                self->falloc = n;
            }
            else {
                found = NULL; /* out of memory: the replay looks the reads up again */
            }
        }
        for (j = 0; j < n && self->nflag > 0; j++) {
            PyObject *key = reads_at(&reads, j);
            Py_hash_t hh = key_hash(key);
            Node *node;
            int r = hh == -1 ? -1 : keys_lookup(self, key, (uint64_t)hh, &node);
            if (r < 0) {
                err = 1;
                n = 0;
                break;
            }
            if (found != NULL) {
                found[j].node = r ? node : NULL;
                found[j].hash = (uint64_t)hh;
            }
            if (r == 1 && node->flag && node->region == R_PROBATION) {
                node->flag = 0;
                self->nflag--;
                if (self->gscore < SCORE_MAX) {
                    self->gscore++;
                }
            }
        }
        if (!err && found != NULL) {
            /* why: the replay below looked every read up a second time (the pass runs on
               nearly every drain of a skewed stream, ghost admissions flag keys often). Until
               the replay nothing frees a node or changes the keys' table: Python code run
               meanwhile (the shadows' hash() and ==) finds every write raising under busy, and
               the shadow climber's decision only moves nodes between regions. So each kept
               lookup is the one the replay would make. */
            nfound = j;
        }
    }
    if (!err && self->sh_up != NULL) {
        /* the shadow climber sees every sampled read first (its decision may move the real
           window before the replay); an exception there drops the reads unreplayed, as the
           Python class does (the sampled reads before it stay counted by the climber) */
        for (j = 0; j < n; j++) {
            PyObject *key = reads_at(&reads, j);
            Py_hash_t hh = key_hash(key);
            if (hh == -1 ||
                (sampled(self, (uint64_t)hh) && observe_key(self, key, (uint64_t)hh) < 0)) {
                break;
            }
        }
        if (j < n || observe_end(self) < 0) {
            err = 1;
            n = 0;
        }
    }
    for (j = 0; j < n; j++) {
        PyObject *key = reads_at(&reads, j);
        Node *node;
        uint64_t h;
        if (j < nfound) {
            node = self->found[j].node;
            h = self->found[j].hash;
        }
        else {
            Py_hash_t hh = key_hash(key);
            if (hh == -1) {
                err = 1;
                break;
            }
            h = (uint64_t)hh;
            int r = keys_lookup(self, key, h, &node);
            if (r < 0) {
                err = 1;
                break;
            }
        }
        if (node == NULL) {
            last_miss = key;
            misses++;
            sketch_increment(self, h);
            continue;
        }
        /* the cap is applied when counters are read or halved */
        node->freq++;
        if (node->region == R_PROTECTED) {
            r_move_to_end(&self->prot, node);
        }
        else if (node->region == R_PROBATION) {
            /* a second use in main: promote to protected, demote protected's LRU overflow */
            r_unlink(&self->prob, node);
            r_append(&self->prot, node, R_PROTECTED);
            self->pw += node->weight;
            demote_protected(self);
        }
        else {
            r_move_to_end(&self->win, node);
        }
    }
    /* j reads were replayed */
    self->hits += j - misses;
    self->requests += j;
    self->tick += (uint32_t)j;
    self->additions += j;
    PyObject *old_last = NULL;
    if (j > 0) {
        set_last_miss(self, last_miss, &old_last);
    }
    if (!err && (self->additions >= self->period ||
                 (self->adaptive && self->requests >= self->climb_sample))) {
        maintain(self, NULL);
    }
    /* consistent: release the replayed reads, then keep the array as the spare */
    Py_XDECREF(old_last);
    reads_release(self, &reads);
    return err ? -1 : 0;
}

/* -- eviction ------------------------------------------------------------------------------ */

typedef struct {
    Node *head;
    Node *tail;
    Py_ssize_t n;
} Chain;

static inline void chain_push(Chain *c, Node *n)
{
    n->next = NULL;
    n->region = R_NONE;
    if (c->tail) {
        c->tail->next = n;
    }
    else {
        c->head = n;
    }
    c->tail = n;
    c->n++;
}

/* A resident key leaves (not yet released): TinyLFUPolicy._drop. */
static void drop(Policy *self, Node *n)
{
    if (n->flag) {
        n->flag = 0;
        self->nflag--;
    }
    r_unlink(region_of(self, n), n);
    keys_remove(self, n);
    sketch_put(self, n->hash, n->freq);
    self->total -= n->weight;
    if (n->region == R_WINDOW) {
        self->ww -= n->weight;
    }
    else if (n->region == R_PROTECTED) {
        self->pw -= n->weight;
    }
}

/* A candidate (in no region) leaves. */
static void discard(Policy *self, Node *n)
{
    if (n->flag) {
        n->flag = 0;
        self->nflag--;
    }
    keys_remove(self, n);
    sketch_put(self, n->hash, n->freq);
    self->total -= n->weight;
}

/* TinyLFUPolicy._victim: main's least valuable node but ``keep``. */
static Node *victim(Policy *self, Node *keep)
{
    Node *n = r_first(&self->prob);
    if (n != NULL) {
        if (n != keep) {
            return n;
        }
        if (self->prob.len > 1) {
            return n->next;
        }
    }
    n = r_first(&self->prot);
    if (n != NULL) {
        if (n != keep) {
            return n;
        }
        if (self->prot.len > 1) {
            return n->next;
        }
    }
    return NULL;
}

/* TinyLFUPolicy._evict; the victims are chained into *out (their key references kept). */
static void evict(Policy *self, Node *new_node, Chain *out)
{
    /* 1. keys beyond the window's target leave it, oldest first, as admission candidates */
    Chain cand = {NULL, NULL, 0};
    while (self->win.len && window_size(self) > self->wmax) {
        Node *n = r_first(&self->win);
        r_unlink(&self->win, n);
        self->ww -= n->weight;
        chain_push(&cand, n);
    }
    /* 2. while over a bound, the candidate and main's LRU victim compete on frequency */
    Node *c = cand.head;
    while (over(self)) {
        Node *v = victim(self, new_node);
        if (c != NULL) {
            Node *next = c->next;
            if (v == NULL) {
                if (c == new_node) {
                    break; /* only the new key is left: the core rejects oversized values */
                }
                discard(self, c);
                chain_push(out, c);
                c = next;
                continue;
            }
            int ghost = 0;
            if (c != new_node && cap15(c->freq) <= cap15(v->freq) + ADMIT_MARGIN) {
                /* a recently rejected candidate may still enter through the ghost */
                ghost = ghost_admit(self, c, cap15(c->freq), cap15(v->freq));
                if (!ghost) {
                    /* rejected: the candidate leaves */
                    discard(self, c);
                    chain_push(out, c);
                    c = next;
                    continue;
                }
            }
            /* admitted: the victim leaves and the candidate enters probation */
            if (v->flag && self->gscore > -SCORE_MAX) {
                self->gscore--; /* a ghost-admitted key displaced before any probation hit */
            }
            drop(self, v);
            chain_push(out, v);
            if (ghost) {
                regret_put(self, v->hash); /* a regret if it comes back soon */
            }
            r_append(&self->prob, c, R_PROBATION);
            c = next;
            continue;
        }
        if (v != NULL) {
            drop(self, v);
            chain_push(out, v);
            continue;
        }
        /* main is empty: evict from the window, never the new key */
        v = r_first(&self->win);
        if (v == NULL || v == new_node) {
            break;
        }
        drop(self, v);
        chain_push(out, v);
    }
    /* 3. candidates not needed to decide anything enter probation */
    while (c != NULL) {
        Node *next = c->next;
        r_append(&self->prob, c, R_PROBATION);
        c = next;
    }
}

/* Turn the victims into a list (the keys' references move into it); the nodes are freed. */
static PyObject *victims_list(Policy *self, Chain *vs)
{
    PyObject *list = PyList_New(vs->n);
    Py_ssize_t i = 0;
    Node *n = vs->head;
    while (n != NULL) {
        Node *next = n->next;
        if (list != NULL) {
            PyList_SET_ITEM(list, i++, n->key);
        }
        else {
            Py_DECREF(n->key); /* out of memory: the keys are gone from the policy anyway */
        }
        node_free(self, n);
        n = next;
    }
    return list;
}

/* -- writes -------------------------------------------------------------------------------- */

static int enter(Policy *self, const char *what)
{
    if (self->busy) {
        PyErr_Format(PyExc_RuntimeError, "TinyLFUPolicy re-entered (%s)", what);
        return -1;
    }
    self->busy = 1;
    return 0;
}

static int parse_key_weight(PyObject *const *args, Py_ssize_t nargs, const char *name,
                            int64_t *weight)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly 2 arguments (key, weight), got %zd",
                     name, nargs);
        return -1;
    }
    PyObject *w = args[1];
    if (!PyLong_Check(w)) {
        PyErr_Format(PyExc_TypeError, "weight must be an int, got %R", w);
        return -1;
    }
    long long v = PyLong_AsLongLong(w);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *weight = (int64_t)v;
    return 0;
}

/* TinyLFUPolicy.update once the key is known resident (the buffer already replayed). */
static PyObject *do_update(Policy *self, Node *node, int64_t weight)
{
    node->freq++;
    self->additions++;
    r_move_to_end(region_of(self, node), node);
    int64_t delta = weight - node->weight;
    node->weight = weight;
    self->total += delta;
    if (node->region == R_WINDOW) {
        self->ww += delta;
    }
    else if (node->region == R_PROTECTED) {
        self->pw += delta;
        demote_protected(self);
    }
    Chain vs = {NULL, NULL, 0};
    if (over(self) || window_size(self) > self->wmax) {
        evict(self, node, &vs);
    }
    return victims_list(self, &vs);
}

/* Return 1 unless ``key`` is the last replayed miss (already counted), 0 if it is, -1 on an
   exception from ==; then forget the last miss (its reference goes to *release). */
static int counts_as_access(Policy *self, PyObject *key, PyObject **release)
{
    PyObject *lm = self->last_miss;
    if (lm == NULL) {
        return 1; /* why: an identity test first, as the Python class does */
    }
    int eq = key_eq(lm, key);
    if (eq < 0) {
        return -1;
    }
    set_last_miss(self, NULL, release);
    return !eq;
}

/* TinyLFUPolicy.add for a key known absent: 0 and the victims chained into *vs (their key
   references kept), or -1 with an exception set (nothing added). ``aside``: the caller's
   read-or-insert of ``key`` whose read is not buffered (see can_aside), counted here as the
   cache-aside branch below counts it once buffered. */
static int do_add_chain(Policy *self, PyObject *key, uint64_t h, int64_t weight, Chain *vs,
                        int aside)
{
    /* reserve first: nothing below can fail once the buffer is handled */
    Node *node = NULL;
    if (keys_reserve(&self->keys) < 0) {
        PyErr_NoMemory();
    }
    else {
        node = node_alloc(self);
    }
    if (node == NULL) {
        if (aside) {
            ring_push(self, key); /* the read stays buffered, as before a failed add */
        }
        return -1;
    }
    if (self->rtab != NULL) {
        regret_check(self, h);
    }
    int count = -1;
    PyObject *release = NULL;
    if (aside) {
        /* the cache-aside branch's effects below, without the ring's push, compare and clear */
        self->requests++;
        self->tick++;
        set_last_miss(self, NULL, &release);
        count = 1;
    }
    else if (self->rlen) {
        int eq = 0;
        if (self->rlen == 1) {
            eq = key_eq(self->ring[self->rhead], key);
            if (eq < 0) {
                node_free(self, node);
                return -1;
            }
        }
        if (eq) {
            /* the shadow climber sees this sampled miss before the real policy counts it */
            if (self->sh_up != NULL && sampled(self, h) && observe_one(self, key, h) < 0) {
                node_free(self, node);
                return -1;
            }
            /* cache-aside: the only buffered read is the miss that led to this add; counting it
               here skips a replay */
            ring_clear(self);
            self->requests++;
            self->tick++;
            set_last_miss(self, NULL, &release);
            count = 1;
        }
        else if (drain(self) < 0) {
            node_free(self, node);
            return -1;
        }
    }
    if (count < 0) {
        /* the read miss before this write, or the write itself: one access either way */
        count = counts_as_access(self, key, &release);
        if (count < 0) {
            node_free(self, node);
            return -1;
        }
    }
    /* no Python code runs from here until the victims are returned */
    int64_t f;
    if (count) {
        /* FrequencySketch.increment_and_take */
        Slot *s = counts_find(self, h);
        if (s == NULL) {
            Py_ssize_t i = door_index(self, h);
            if (self->door[i]) {
                f = 2;
            }
            else {
                self->door[i] = 1;
                f = 1;
            }
        }
        else {
            int64_t c = (int64_t)s->val;
            table_delete_at(&self->counts, s - self->counts.slots);
            f = (c < COUNTER_MAX ? c + 1 : COUNTER_MAX) + self->door[door_index(self, h)];
        }
        self->additions++;
        /* why "adaptive &&": a static policy (every shadow) never resets requests, so past
           the sample it called maintain, which does nothing then, on every add */
        if (self->additions >= self->period ||
            (self->adaptive && self->requests >= self->climb_sample)) {
            maintain(self, &f); /* aging halves f too */
        }
    }
    else {
        /* FrequencySketch.take */
        int64_t c = counts_pop(self, h);
        f = cap15(c) + self->door[door_index(self, h)];
    }
    Py_INCREF(key);
    node->key = key;
    node->hash = h;
    node->weight = weight;
    node->freq = f;
    node->flag = 0;
    table_place(&self->keys, h, (uintptr_t)node);
    r_append(&self->win, node, R_WINDOW);
    self->ww += weight;
    self->total += weight;
    if (window_size(self) > self->wmax || over(self)) {
        evict(self, node, vs);
    }
    Py_XDECREF(release);
    return 0;
}

/* May a read-or-insert of the absent ``key`` (hash ``h``) skip buffering its read, the add
   counting it directly (do_add_chain's ``aside``)? Only when that is exactly what the buffered
   read would lead to: the ring is empty and allocated (the push cannot fail or drop a read) and
   the shadow climber does not observe the key (no Python code runs before it is counted). Why:
   a new key in a full policy (every access of the new-key stream, every shadow's sampled miss)
   paid a reference, a ring write, a compare, and the ring's swap with its spare and release. */
static inline int can_aside(Policy *self, uint64_t h)
{
    return self->rlen == 0 && self->ralloc > 0 && (self->sh_up == NULL || !sampled(self, h));
}

/* TinyLFUPolicy.add for a key known absent: the victims as a list. */
static PyObject *do_add(Policy *self, PyObject *key, uint64_t h, int64_t weight)
{
    Chain vs = {NULL, NULL, 0};
    if (do_add_chain(self, key, h, weight, &vs, 0) < 0) {
        return NULL;
    }
    return victims_list(self, &vs);
}

/* -- the shadow climber ------------------------------------------------------------------- */

/* The constants of benchmarks/prototypes/shadow_climber.py's defaults (the Python class's
   _SHADOW_* constants): see "The shadow climber" at the top of this file. */
#define SHADOW_MIN 512        /* the shadows hold at least this many keys */
#define SHADOW_RATE_MAX 64    /* at most one key in 64 is sampled */
#define SHADOW_PROBE 0.0625   /* the shadows' windows sit at the real share -/+ this */
#define SHADOW_PROBE_MAX 0.5  /* the probe doubles per decision without a move, up to this */
#define SHADOW_STEP 0.0625    /* the real window's move, share of the capacity */
#define SHADOW_EPOCH 256      /* sampled accesses between two decisions, at least */
#define SHADOW_MIN_DIS 16     /* disagreements needed for a decision */
#define SHADOW_Z2 9           /* the lead must be 3 sigma: lead**2 > 9 * n */
#define SHADOW_LONG_Z2 4      /* the long-horizon lead must agree at 2 sigma */
#define SHADOW_DECAY 3        /* counts lose 1/8 per decision without a move */
#define SHADOW_LONG_DECAY 5   /* the long-horizon counts lose 1/32 per decision */
#define SHADOW_BUF_MAX 4096   /* a shadow replays its reads once it holds more */
#define SHADOW_READ_BUFFER ((Py_ssize_t)1 << 16) /* the shadows' buffers: never reached */

static PyTypeObject PolicyType;
static Policy *policy_create(PyTypeObject *type, int64_t me, int64_t mw, Py_ssize_t rmax,
                             double wshare, PyObject *adaptive, int truth, PyObject *climber,
                             int shadow_mode, int ghost);

/* Release victims that no caller wants (a shadow's): the keys, then the nodes. */
static void chain_release(Policy *self, Chain *vs)
{
    Node *n = vs->head;
    while (n != NULL) {
        Node *next = n->next;
        PyObject *k = n->key;
        node_free(self, n);
        Py_DECREF(k);
        n = next;
    }
}

/* Is ``key`` resident in shadow ``s``? 1 yes, 0 no, -1 an exception (from ==). */
static int shadow_lookup(Policy *s, PyObject *key, uint64_t h)
{
    if (enter(s, "shadow") < 0) {
        return -1;
    }
    Node *node;
    int r = keys_lookup(s, key, h, &node);
    s->busy = 0;
    return r;
}

/* Shadow ``s`` sees an access of ``key`` (``resident``: as looked up): the read is buffered,
   and a key not resident is added, as the prototype's _observe does. 0, or -1 on an exception. */
static int shadow_feed(Policy *s, PyObject *key, uint64_t h, int resident)
{
    if (enter(s, "shadow") < 0) {
        return -1;
    }
    Chain vs = {NULL, NULL, 0};
    int r = 0;
    if (!resident && can_aside(s, h)) {
        r = do_add_chain(s, key, h, 1, &vs, 1);
    }
    else {
        ring_push(s, key);
        r = resident ? 0 : do_add_chain(s, key, h, 1, &vs, 0);
    }
    s->busy = 0;
    chain_release(s, &vs);
    return r;
}

/* A shadow replays its buffered reads. */
static int shadow_drain(Policy *s)
{
    if (enter(s, "shadow") < 0) {
        return -1;
    }
    int r = drain(s);
    s->busy = 0;
    return r;
}

/* The prototype's _shadow_target: move shadow ``s``'s window to ``frac`` of its capacity. */
static int shadow_target(Policy *self, Policy *s, double frac)
{
    int64_t cap_s = self->sh_cap;
    int64_t target = i64min(i64max(1, (int64_t)rint(frac * (double)cap_s)), cap_s - 1);
    if (enter(s, "shadow") < 0) {
        return -1;
    }
    int r = s->rlen ? drain(s) : 0;
    if (r == 0) {
        s->adjust = target - s->wmax;
        if (s->adjust > 0) {
            increase_window(s);
        }
        else if (s->adjust < 0) {
            decrease_window(s);
        }
        s->adjust = 0;
    }
    s->busy = 0;
    return r;
}

/* Re-centre both shadows on the real window share, -/+ the probe. */
static int shadow_retarget(Policy *self)
{
    double f = (double)self->wmax / (double)maximum(self);
    double p = self->sh_probe;
    if (shadow_target(self, self->sh_down, f - p) < 0) {
        return -1;
    }
    return shadow_target(self, self->sh_up, f + p);
}

/* a * a > b for b >= -1, without overflow. Why it is needed at all: every count below is
   decayed once a decision (at most 8x what one replay observes for dis_*, 32x for long_*),
   so the counts stay below 32 x the longest read buffer, far below 2**63; their squares need
   not, for a read buffer of more than 2**26 reads. */
static inline int square_exceeds(int64_t a, int64_t b)
{
    uint64_t u = a < 0 ? -(uint64_t)a : (uint64_t)a;
    if (u > 3037000499u) { /* floor(sqrt(2**63 - 1)) */
        return 1;
    }
    return (int64_t)(u * u) > b;
}

/* The prototype's _h3_decide with its default options: a sign test on the disagreements,
   which a long-horizon pair must confirm; a move of one step (half the probe if more), or a
   wider probe. */
static int shadow_decide(Policy *self)
{
    self->sh_seen = 0;
    int64_t du = self->dis_up;
    int64_t dd = self->dis_down;
    int64_t n = du + dd;
    int64_t lead = du - dd;
    int64_t lu = self->long_up + self->new_up;
    int64_t ld = self->long_down + self->new_down;
    self->long_up = lu - (lu >> SHADOW_LONG_DECAY);
    self->long_down = ld - (ld >> SHADOW_LONG_DECAY);
    int64_t ll = lu - ld;
    int ok = ((ll > 0) == (lead > 0)) && ll != 0 &&
             square_exceeds(ll, SHADOW_LONG_Z2 * (lu + ld) - 1); /* ll**2 >= 4 * (lu + ld) */
    self->new_up = self->new_down = 0;
    if (ok && n >= SHADOW_MIN_DIS && square_exceeds(lead, SHADOW_Z2 * n)) {
        int64_t cap = maximum(self);
        /* a decision at a widened probe moves half the probe, at least one step: Python's
           max(step, round(probe * cap / 2)); probe * cap / 2 is exact in a double (the probe is
           1/16 .. 1/2, cap < 2**53), truncation is its floor, and an exact half rounds to even */
        double half = self->sh_probe * (double)cap / 2.0;
        int64_t jump = (int64_t)half;
        double frac = half - (double)jump;
        if (frac > 0.5 || (frac == 0.5 && (jump & 1))) {
            jump++;
        }
        int64_t step = i64max(self->sh_step, jump);
        int64_t amount;
        if (lead > 0) {
            amount = i64min(step, i64max(0, cap - 1 - self->wmax));
        }
        else {
            amount = -i64min(step, i64max(0, self->wmax - 1));
        }
        self->dis_up = self->dis_down = 0;
        if (amount) {
            self->adjust = amount;
            if (amount > 0) {
                increase_window(self);
            }
            else {
                decrease_window(self);
            }
            self->adjust = 0;
            self->climber_moves++;
            self->sh_probe = SHADOW_PROBE;
            return shadow_retarget(self);
        }
        /* pinned at a bound: as good as no decision (the probe may widen) */
        du = dd = 0;
    }
    /* (the prototype's widen=1: its "quiet" count is reset every time it is read) */
    if (self->sh_probe < SHADOW_PROBE_MAX) {
        self->sh_probe = 2 * self->sh_probe < SHADOW_PROBE_MAX ? 2 * self->sh_probe
                                                               : SHADOW_PROBE_MAX;
        if (shadow_retarget(self) < 0) {
            return -1;
        }
        self->dis_up = self->dis_down = 0;
        return 0;
    }
    self->dis_up = du - (du >> SHADOW_DECAY);
    self->dis_down = dd - (dd >> SHADOW_DECAY);
    return 0;
}

/* The prototype's _observe, one sampled key (its hash ``h``): both shadows see it and a
   disagreement is counted. -1 on an exception. */
static int observe_key(Policy *self, PyObject *key, uint64_t h)
{
    self->sh_seen++;
    int hu = shadow_lookup(self->sh_up, key, h);
    if (hu < 0) {
        return -1;
    }
    int hd = shadow_lookup(self->sh_down, key, h);
    if (hd < 0 || shadow_feed(self->sh_up, key, h, hu) < 0 ||
        shadow_feed(self->sh_down, key, h, hd) < 0) {
        return -1;
    }
    if (hu != hd) {
        if (hu) {
            self->dis_up++;
            self->new_up++;
        }
        else {
            self->dis_down++;
            self->new_down++;
        }
    }
    return 0;
}

/* The end of the prototype's _observe: keep the shadows' buffers short (an all-hit stretch
   only appends to them), and decide once an epoch of sampled accesses was seen. */
static int observe_end(Policy *self)
{
    if (self->sh_up->rlen > SHADOW_BUF_MAX && shadow_drain(self->sh_up) < 0) {
        return -1;
    }
    if (self->sh_down->rlen > SHADOW_BUF_MAX && shadow_drain(self->sh_down) < 0) {
        return -1;
    }
    if (self->sh_seen >= SHADOW_EPOCH) {
        return shadow_decide(self);
    }
    return 0;
}

static int observe_one(Policy *self, PyObject *key, uint64_t h)
{
    if (observe_key(self, key, h) < 0) {
        return -1;
    }
    return observe_end(self);
}

/* Is the shadow climber active for these bounds? (It counts entries: count-bounded only.) */
static inline int shadow_wanted(Policy *self, int64_t me, int64_t mw)
{
    return self->shadow_mode && self->adaptive && mw < 0 && me >= 0;
}

/* log2 of R, the prototype's _sampling(cap): one key in R is sampled, R a power of two with
   cap / R >= SHADOW_MIN (full shadows below 2 x SHADOW_MIN entries), R <= SHADOW_RATE_MAX */
static int shadow_rate_bits(int64_t cap)
{
    int k = 0;
    while (((int64_t)1 << k) < SHADOW_RATE_MAX && cap / ((int64_t)2 << k) >= SHADOW_MIN) {
        k++;
    }
    return k;
}

/* Build the two empty shadows of a count-bounded cache of ``cap`` entries whose window holds
   ``wmax`` of them, as the prototype's constructor does; -1 with an exception set. */
static int shadow_make(int64_t cap, int64_t wmax, Policy **up, Policy **down)
{
    int k = shadow_rate_bits(cap);
    int64_t cap_s = i64max(2, cap >> k);
    double f = (double)wmax / (double)cap;
    double wd = f - SHADOW_PROBE;
    double wu = f + SHADOW_PROBE;
    wd = wd < 0.0 ? 0.0 : (wd > 1.0 ? 1.0 : wd);
    wu = wu < 0.0 ? 0.0 : (wu > 1.0 ? 1.0 : wu);
    *down = policy_create(&PolicyType, cap_s, -1, SHADOW_READ_BUFFER, wd, Py_False, 0, NULL, 0, 0);
    if (*down == NULL) {
        return -1;
    }
    *up = policy_create(&PolicyType, cap_s, -1, SHADOW_READ_BUFFER, wu, Py_False, 0, NULL, 0, 0);
    if (*up == NULL) {
        Py_CLEAR(*down);
        return -1;
    }
    /* (empty tables: nothing to re-place) */
    (*up)->keys.mul = (*up)->counts.mul = (*down)->keys.mul = (*down)->counts.mul = GOLDEN << k;
    return 0;
}

/* Install new shadows (NULL, NULL: the shadow climber is off) for the current bounds with every
   count zero; the old ones go to *old_up / *old_down, released by the caller once consistent. */
static void shadow_install(Policy *self, Policy *up, Policy *down, Policy **old_up,
                           Policy **old_down)
{
    *old_up = self->sh_up;
    *old_down = self->sh_down;
    self->sh_up = up;
    self->sh_down = down;
    if (up != NULL) {
        int64_t cap = self->max_entries;
        int k = shadow_rate_bits(cap);
        /* sampled iff (hash * GOLDEN) mod 2**64 < 2**64 / 2**k */
        self->sh_limit = UINT64_MAX >> k;
        self->sh_cap = i64max(2, cap >> k);
        self->sh_step = i64max(1, (int64_t)rint(SHADOW_STEP * (double)cap));
    }
    self->sh_seen = 0;
    self->dis_up = self->dis_down = 0;
    self->new_up = self->new_down = 0;
    self->long_up = self->long_down = 0;
    self->sh_probe = SHADOW_PROBE;
}

/* add() and update(): the buffer is replayed first (update) or once the key is known absent
   (add, which then counts a buffered miss of the same key as this write's access). */
static PyObject *do_write(Policy *self, PyObject *const *args, Py_ssize_t nargs, const char *name,
                       int replay_first, int none_if_empty)
{
    int64_t weight;
    if (parse_key_weight(args, nargs, name, &weight) < 0 || enter(self, name) < 0) {
        return NULL;
    }
    PyObject *key = args[0];
    PyObject *result = NULL;
    Py_INCREF(key);
    if (!replay_first || self->rlen == 0 || drain(self) == 0) {
        Py_hash_t hh = key_hash(key);
        Node *node;
        int r = hh == -1 ? -1 : keys_lookup(self, key, (uint64_t)hh, &node);
        if (r == 1) {
            if (replay_first || self->rlen == 0 || drain(self) == 0) {
                result = do_update(self, node, weight);
            }
        }
        else if (r == 0) {
            if (none_if_empty) {
                /* (see policy_add_c: None, not a new empty list, when nothing leaves) */
                Chain vs = {NULL, NULL, 0};
                if (do_add_chain(self, key, (uint64_t)hh, weight, &vs, 0) == 0) {
                    if (vs.n) {
                        result = victims_list(self, &vs);
                    }
                    else {
                        result = Py_None;
                        Py_INCREF(result);
                    }
                }
            }
            else {
                result = do_add(self, key, (uint64_t)hh, weight);
            }
        }
    }
    self->busy = 0;
    Py_DECREF(key);
    return result;
}

static PyObject *Policy_add(Policy *self, PyObject *const *args, Py_ssize_t nargs)
{
    return do_write(self, args, nargs, "add", 0, 0);
}

static PyObject *Policy_update(Policy *self, PyObject *const *args, Py_ssize_t nargs)
{
    return do_write(self, args, nargs, "update", 1, 0);
}

static PyObject *Policy_remove(Policy *self, PyObject *key)
{
    if (enter(self, "remove") < 0) {
        return NULL;
    }
    int ok = 0;
    Node *node = NULL;
    Py_INCREF(key);
    if (self->rlen == 0 || drain(self) == 0) {
        Py_hash_t hh = key_hash(key);
        if (hh != -1) {
            int r = keys_lookup(self, key, (uint64_t)hh, &node);
            if (r >= 0) {
                ok = 1;
                if (r == 1) {
                    drop(self, node);
                }
                else {
                    node = NULL;
                }
            }
        }
    }
    self->busy = 0;
    Py_DECREF(key);
    if (node != NULL) {
        PyObject *k = node->key;
        node_free(self, node);
        Py_DECREF(k);
    }
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Detach every resident node and buffered read, reset the regions and the table, then release
   the references (a key's __del__ then sees an empty, consistent policy). */
static void forget_all(Policy *self)
{
    Node *chain = NULL;
    Region *regions[3] = {&self->win, &self->prob, &self->prot};
    for (int r = 0; r < 3; r++) {
        Region *reg = regions[r];
        Node *n = reg->head.next;
        while (n != &reg->head) {
            Node *next = n->next;
            n->next = chain;
            chain = n;
            n = next;
        }
        r_init(reg);
    }
    table_clear(&self->keys);
    self->ww = self->pw = self->total = 0;
    self->nflag = 0; /* the flags go with the nodes */
    PyObject *lm = self->last_miss;
    self->last_miss = NULL;
    ring_clear(self);
    while (chain != NULL) {
        Node *next = chain->next;
        PyObject *k = chain->key;
        node_free(self, chain);
        Py_DECREF(k);
        chain = next;
    }
    Py_XDECREF(lm);
}

static PyObject *Policy_clear(Policy *self, PyObject *Py_UNUSED(ignored))
{
    if (enter(self, "clear") < 0) {
        return NULL;
    }
    /* nothing below runs Python code until forget_all releases keys */
    table_clear(&self->counts);
    if (self->door != NULL) {
        memset(self->door, 0, (size_t)1 << self->dbits);
    }
    /* the shadow climber restarts with empty shadows at the kept window share (built first:
       an allocation failure changes nothing) */
    Policy *up = NULL, *down = NULL, *old_up, *old_down;
    if (shadow_wanted(self, self->max_entries, self->max_weight) &&
        shadow_make(self->max_entries, self->wmax, &up, &down) < 0) {
        self->busy = 0;
        return NULL;
    }
    table_clear(&self->counts);
    if (self->door != NULL) {
        memset(self->door, 0, (size_t)1 << self->dbits);
    }
    self->additions = 0;
    self->hits = self->requests = 0;
    ghost_reset(self, self->max_entries);
    self->gscore = self->gexplore = 0;
    shadow_install(self, up, down, &old_up, &old_down);
    forget_all(self);
    self->busy = 0;
    Py_XDECREF(old_up);
    Py_XDECREF(old_down);
    Py_RETURN_NONE;
}

/* _check_bounds for one bound: -1 with ConfigError set, else 0 and *out (-1 for None). */
static int check_bound(const char *name, PyObject *value, int64_t *out)
{
    if (value == Py_None) {
        *out = -1;
        return 0;
    }
    if (PyBool_Check(value) || !PyLong_Check(value)) {
        PyErr_Format(ConfigError, "%s must be an int or None, got %R", name, value);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && v < 1)) {
        PyErr_Format(ConfigError, "%s must be >= 1 or None, got %R", name, value);
        return -1;
    }
    if (overflow > 0) {
        PyErr_Format(ConfigError, "%s must be < 2**63 or None, got %R", name, value);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int check_bounds(PyObject *max_entries, PyObject *max_weight, int64_t *me, int64_t *mw)
{
    if (check_bound("max_entries", max_entries, me) < 0) {
        return -1;
    }
    return check_bound("max_weight", max_weight, mw);
}

static PyObject *Policy_resize(Policy *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "resize() takes exactly 2 arguments (max_entries, max_weight), got %zd",
                     nargs);
        return NULL;
    }
    int64_t me, mw;
    if (check_bounds(args[0], args[1], &me, &mw) < 0 || enter(self, "resize") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (self->rlen == 0 || drain(self) == 0) {
        int64_t m = maximum(self);
        double share = m ? (double)self->wmax / (double)m : PERCENT_WINDOW;
        /* the shadow climber, if active for the new bounds, restarts with empty shadows at the
           new window share (built first: an allocation failure changes nothing) */
        Policy *up = NULL, *down = NULL, *old_up = NULL, *old_down = NULL;
        if (!shadow_wanted(self, me, mw) ||
            shadow_make(me, window_units(share, me), &up, &down) == 0) {
            self->max_entries = me;
            self->max_weight = mw;
            size_regions(self, share);
            /* the protected target may have shrunk, and the window now counts in other units */
            demote_protected(self);
            Chain vs = {NULL, NULL, 0};
            evict(self, NULL, &vs);
            /* new bounds: the ghost and regret tables are rebuilt empty (the flags stay) */
            ghost_reset(self, me);
            shadow_install(self, up, down, &old_up, &old_down);
            result = victims_list(self, &vs);
        }
        self->busy = 0;
        Py_XDECREF(old_up);
        Py_XDECREF(old_down);
        return result;
    }
    self->busy = 0;
    return result;
}

/* -- construction, GC ---------------------------------------------------------------------- */

static PyObject *Policy_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_entries", "max_weight", "window", "adaptive", "read_buffer",
                             "climber", "ghost", NULL};
    PyObject *max_entries, *max_weight;
    PyObject *window = NULL, *adaptive = Py_True, *read_buffer = Py_None, *climber = NULL;
    PyObject *ghost = Py_True;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OOOOO:TinyLFUPolicy", kwlist, &max_entries,
                                     &max_weight, &window, &adaptive, &read_buffer, &climber,
                                     &ghost)) {
        return NULL;
    }
    int64_t me, mw;
    if (check_bounds(max_entries, max_weight, &me, &mw) < 0) {
        return NULL;
    }
    Py_ssize_t rmax;
    int rb_ok = 1;
    if (read_buffer == Py_None) {
        int64_t m = me < 0 ? 0 : me;
        rmax = (Py_ssize_t)i64max(READ_BUFFER, i64min(m, READ_BUFFER_MAX));
    }
    else if (PyBool_Check(read_buffer) || !PyLong_Check(read_buffer)) {
        rb_ok = 0;
        rmax = 0;
    }
    else {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(read_buffer, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow > 0 || v > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(PyObject *)) {
            rmax = PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(PyObject *); /* grown lazily */
        }
        else if (overflow < 0 || v < 1) {
            rb_ok = 0;
            rmax = 0;
        }
        else {
            rmax = (Py_ssize_t)v;
        }
    }
    double wshare = PERCENT_WINDOW;
    if (window != NULL) {
        int ok = 0;
        if (PyFloat_Check(window)) {
            wshare = PyFloat_AS_DOUBLE(window);
            ok = 0.0 <= wshare && wshare <= 1.0;
        }
        else if (PyLong_Check(window)) {
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(window, &overflow);
            if (v == -1 && PyErr_Occurred()) {
                return NULL;
            }
            ok = overflow == 0 && (v == 0 || v == 1);
            wshare = (double)v;
        }
        if (!ok) {
            PyErr_Format(ConfigError, "window must be a fraction in [0, 1], got %R", window);
            return NULL;
        }
    }
    if (!rb_ok) {
        PyErr_Format(ConfigError, "read_buffer must be an int >= 1, got %R", read_buffer);
        return NULL;
    }
    int shadow_mode = 1;
    if (climber == NULL) {
        climber = STR_SHADOW; /* the default, as the Python class's */
    }
    else {
        int ok = 0;
        if (PyUnicode_Check(climber)) {
            shadow_mode = PyUnicode_CompareWithASCIIString(climber, "shadow") == 0;
            ok = shadow_mode || PyUnicode_CompareWithASCIIString(climber, "sample") == 0;
        }
        if (!ok) {
            PyErr_Format(ConfigError, "climber must be 'sample' or 'shadow', got %R", climber);
            return NULL;
        }
    }
    if (!PyBool_Check(ghost)) {
        PyErr_Format(ConfigError, "ghost must be True or False, got %R", ghost);
        return NULL;
    }
    int truth = PyObject_IsTrue(adaptive);
    if (truth < 0) {
        return NULL;
    }
    return (PyObject *)policy_create(type, me, mw, rmax, wshare, adaptive, truth, climber,
                                     shadow_mode, ghost == Py_True);
}

/* A new policy for validated options (``climber`` NULL: "sample"); NULL with an exception. */
static Policy *policy_create(PyTypeObject *type, int64_t me, int64_t mw, Py_ssize_t rmax,
                             double wshare, PyObject *adaptive, int truth, PyObject *climber,
                             int shadow_mode, int ghost)
{
    Policy *self = (Policy *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    r_init(&self->win);
    r_init(&self->prob);
    r_init(&self->prot);
    self->max_entries = me;
    self->max_weight = mw;
    self->rmax = rmax;
    Py_INCREF(adaptive);
    self->adaptive_obj = adaptive;
    self->adaptive = truth;
    self->climber_obj = climber != NULL ? climber : STR_SAMPLE;
    Py_INCREF(self->climber_obj);
    self->shadow_mode = shadow_mode;
    self->ghost = ghost;
    ghost_reset(self, me);
    self->counts.mul = self->keys.mul = GOLDEN;
    if (table_init(&self->counts, 4) < 0 || table_init(&self->keys, 4) < 0) {
        Py_DECREF(self);
        PyErr_NoMemory();
        return NULL;
    }
    self->capacity = 0;
    if (sketch_size(self, capacity_hint(self)) < 0) {
        Py_DECREF(self);
        PyErr_NoMemory();
        return NULL;
    }
    size_regions(self, wshare);
    if (shadow_wanted(self, me, mw)) {
        Policy *up, *down, *old_up, *old_down;
        if (shadow_make(me, self->wmax, &up, &down) < 0) {
            Py_DECREF(self);
            return NULL;
        }
        shadow_install(self, up, down, &old_up, &old_down);
    }
    return self;
}

static int Policy_traverse(Policy *self, visitproc visit, void *arg)
{
    Region *regions[3] = {&self->win, &self->prob, &self->prot};
    for (int r = 0; r < 3; r++) {
        Node *n = regions[r]->head.next;
        for (; n != NULL && n != &regions[r]->head; n = n->next) {
            Py_VISIT(n->key);
        }
    }
    for (Py_ssize_t j = 0; j < self->rlen; j++) {
        Py_ssize_t i = self->rhead + j;
        if (i >= self->ralloc) {
            i -= self->ralloc;
        }
        Py_VISIT(self->ring[i]);
    }
    Py_VISIT(self->last_miss);
    Py_VISIT(self->adaptive_obj);
    Py_VISIT(self->climber_obj);
    Py_VISIT((PyObject *)self->sh_up);
    Py_VISIT((PyObject *)self->sh_down);
    return 0;
}

static int Policy_tp_clear(Policy *self)
{
    forget_all(self);
    /* both pointers go before either shadow is released (a key's __del__ may call in) */
    PyObject *up = (PyObject *)self->sh_up;
    PyObject *down = (PyObject *)self->sh_down;
    self->sh_up = self->sh_down = NULL;
    Py_XDECREF(up);
    Py_XDECREF(down);
    Py_CLEAR(self->adaptive_obj);
    Py_CLEAR(self->climber_obj);
    return 0;
}

static void Policy_dealloc(Policy *self)
{
    PyObject_GC_UnTrack(self);
    Policy_tp_clear(self);
    PyMem_Free(self->keys.slots);
    PyMem_Free(self->counts.slots);
    PyMem_Free(self->door);
    PyMem_Free(self->ring);
    PyMem_Free(self->spare);
    PyMem_Free(self->gtab);
    PyMem_Free(self->rtab);
    PyMem_Free(self->found);
    while (self->freelist != NULL) {
        Node *next = self->freelist->next;
        PyMem_Free(self->freelist);
        self->freelist = next;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- copy ---------------------------------------------------------------------------------- */

/* The slot index of resident node ``n`` in ``t`` (it is there). */
static Py_ssize_t keys_slot_of(const Table *t, const Node *n)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(n->hash, t);
    while (t->slots[i].val != (uintptr_t)n) {
        i = (i + 1) & mask;
    }
    return i;
}

/* A copy of ``src`` that makes, from now on, exactly the decisions ``src`` would: every field,
   the same key objects (new references), the same table layouts (slot for slot), the shadows
   copied recursively; the free list and the spare read array are not copied (they change no
   decision). NULL with an exception set (RuntimeError while ``src`` is busy, MemoryError).
   ``src`` is held busy throughout: the shadows' copies allocate GC objects, so a collection may
   run a finalizer that calls in; its mutating calls then raise, and a hit or miss it records
   lands in ``src``'s ring, which is copied last with no Python code running. */
static Policy *policy_copy(Policy *src)
{
    if (enter(src, "copy") < 0) {
        return NULL;
    }
    Policy *o = (Policy *)Py_TYPE(src)->tp_alloc(Py_TYPE(src), 0);
    if (o == NULL) {
        src->busy = 0;
        return NULL;
    }
    /* every scalar field, then every pointer made empty (or owned) before anything can run:
       from here on o is a consistent, empty policy that tp_traverse and dealloc handle */
    memcpy((char *)o + sizeof(PyObject), (const char *)src + sizeof(PyObject),
           sizeof(Policy) - sizeof(PyObject));
    o->busy = 0;
    r_init(&o->win);
    r_init(&o->prob);
    r_init(&o->prot);
    o->keys.slots = NULL;
    o->keys.used = 0;
    o->counts.slots = NULL;
    o->counts.used = 0;
    o->door = NULL;
    o->ring = o->spare = NULL;
    o->ralloc = o->salloc = 0;
    o->rhead = o->rlen = 0;
    o->last_miss = NULL;
    Py_XINCREF(o->adaptive_obj);
    Py_XINCREF(o->climber_obj);
    o->sh_up = o->sh_down = NULL;
    o->gtab = o->rtab = NULL;
    o->nflag = 0;
    o->freelist = NULL;
    o->nfree = 0;
    o->found = NULL;
    o->falloc = 0;
    /* the shadows first: the only step that allocates GC objects */
    if (src->sh_up != NULL) {
        Policy *up = policy_copy(src->sh_up);
        Policy *down = up != NULL ? policy_copy(src->sh_down) : NULL;
        if (down == NULL) {
            Py_XDECREF(up);
            goto fail;
        }
        o->sh_up = up;
        o->sh_down = down;
    }
    /* from here on no Python code runs until the copy is complete */
    Py_ssize_t ksize = (Py_ssize_t)1 << src->keys.bits;
    Py_ssize_t csize = (Py_ssize_t)1 << src->counts.bits;
    o->keys.slots = PyMem_Calloc((size_t)ksize, sizeof(Slot));
    o->counts.slots = PyMem_Malloc((size_t)csize * sizeof(Slot));
    o->door = PyMem_Malloc((size_t)1 << src->dbits);
    if (o->keys.slots == NULL || o->counts.slots == NULL || o->door == NULL) {
        goto nomem;
    }
    memcpy(o->counts.slots, src->counts.slots, (size_t)csize * sizeof(Slot));
    o->counts.used = src->counts.used;
    memcpy(o->door, src->door, (size_t)1 << src->dbits);
    if (src->gtab != NULL) {
        o->gtab = PyMem_Malloc(((size_t)1 << src->gbits) * sizeof(uint64_t));
        o->rtab = PyMem_Malloc(((size_t)1 << src->rbits) * sizeof(uint64_t));
        if (o->gtab == NULL || o->rtab == NULL) {
            goto nomem;
        }
        memcpy(o->gtab, src->gtab, ((size_t)1 << src->gbits) * sizeof(uint64_t));
        memcpy(o->rtab, src->rtab, ((size_t)1 << src->rbits) * sizeof(uint64_t));
    }
    /* the resident nodes, region by region in order, each in the slot its original holds */
    Region *from[3] = {&src->win, &src->prob, &src->prot};
    Region *to[3] = {&o->win, &o->prob, &o->prot};
    for (int r = 0; r < 3; r++) {
        for (Node *n = from[r]->head.next; n != &from[r]->head; n = n->next) {
            Node *m = PyMem_Malloc(sizeof(Node));
            if (m == NULL) {
                goto nomem;
            }
            *m = *n;
            Py_INCREF(m->key);
            r_append(to[r], m, n->region);
            Py_ssize_t i = keys_slot_of(&src->keys, n);
            o->keys.slots[i].hash = n->hash;
            o->keys.slots[i].val = (uintptr_t)m;
            o->keys.used++;
            o->nflag += m->flag;
        }
    }
    /* the read buffer, in the same layout, and the last miss */
    if (src->ralloc > 0) {
        o->ring = PyMem_Malloc((size_t)src->ralloc * sizeof(PyObject *));
        if (o->ring == NULL) {
            goto nomem;
        }
        o->ralloc = src->ralloc;
        for (Py_ssize_t j = 0; j < src->rlen; j++) {
            Py_ssize_t i = src->rhead + j;
            if (i >= src->ralloc) {
                i -= src->ralloc;
            }
            Py_INCREF(src->ring[i]);
            o->ring[i] = src->ring[i];
        }
        o->rhead = src->rhead;
        o->rlen = src->rlen;
    }
    Py_XINCREF(src->last_miss);
    o->last_miss = src->last_miss;
    src->busy = 0;
    return o;
nomem:
    PyErr_NoMemory();
fail:
    src->busy = 0;
    Py_DECREF(o); /* its dealloc releases what was copied so far */
    return NULL;
}

static PyObject *Policy_copy(Policy *self, PyObject *Py_UNUSED(ignored))
{
    return (PyObject *)policy_copy(self);
}

/* -- adoption: order, prepend, set_weights, access ------------------------------------------ */

/* The pieces rule G's AutoPolicy needs to adopt a simulation's copy and to run its simulations,
   with the Python class's semantics (its methods of the same names; tests/cache/
   test_tinylfu_adopt.py checks them op by op). None of order, prepend, set_weights replays the
   buffered reads. */

static PyObject *MappingABC = NULL; /* collections.abc.Mapping, for set_weights' check */

static PyObject *Policy_order(Policy *self, PyObject *Py_UNUSED(ignored))
{
    Region *regions[3] = {&self->prob, &self->prot, &self->win};
    PyObject *out = PyList_New(self->prob.len + self->prot.len + self->win.len);
    if (out == NULL) {
        return NULL;
    }
    /* busy across the walk: a pair's allocation may trigger a collection whose finalizer calls
       in; its mutating calls then raise instead of freeing nodes under the walk (a nested
       order() or lookup is harmless). The list's empty items are NULL, which its traverse
       skips. */
    int was_busy = self->busy;
    self->busy = 1;
    Py_ssize_t j = 0;
    for (int r = 0; r < 3; r++) {
        for (Node *n = regions[r]->head.next; n != &regions[r]->head; n = n->next) {
            PyObject *w = PyLong_FromLongLong(n->weight);
            PyObject *pair = w != NULL ? PyTuple_Pack(2, n->key, w) : NULL;
            Py_XDECREF(w);
            if (pair == NULL) {
                self->busy = was_busy;
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, j++, pair);
        }
    }
    self->busy = was_busy;
    return out;
}

static PyObject *Policy_prepend(Policy *self, PyObject *keys)
{
    /* an owned tuple: the keys' __hash__ and __eq__ run below and may mutate the caller's list */
    PyObject *seq = PySequence_Tuple(keys);
    if (seq == NULL) {
        return NULL;
    }
    if (enter(self, "prepend") < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(seq);
    uint64_t *hs = NULL;
    PyObject *seen = NULL;
    Node *spare = NULL; /* the new nodes, allocated before anything changes */
    int ok = 0;
    if (m == 0) {
        ok = 1;
        goto done;
    }
    hs = PyMem_Malloc((size_t)m * sizeof(uint64_t));
    seen = PySet_New(NULL);
    if (hs == NULL || seen == NULL) {
        if (hs == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    /* 1. check every key, in order, as the Python class does: none resident, none twice */
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *k = PyTuple_GET_ITEM(seq, j);
        Py_hash_t hh = key_hash(k);
        Node *node;
        int r = hh == -1 ? -1 : keys_lookup(self, k, (uint64_t)hh, &node);
        if (r < 0) {
            goto done;
        }
        if (r) {
            PyErr_Format(PyExc_ValueError, "TinyLFUPolicy.prepend: key %R is resident already",
                         k);
            goto done;
        }
        r = PySet_Contains(seen, k);
        if (r < 0) {
            goto done;
        }
        if (r) {
            PyErr_Format(PyExc_ValueError, "TinyLFUPolicy.prepend: key %R appears twice in keys",
                         k);
            goto done;
        }
        if (PySet_Add(seen, k) < 0) {
            goto done;
        }
        hs[j] = (uint64_t)hh;
    }
    if (self->total > INT64_MAX - (int64_t)m) {
        PyErr_Format(PyExc_OverflowError,
                     "TinyLFUPolicy.prepend: the total weight would overflow int64 (total %lld, "
                     "%zd keys)",
                     (long long)self->total, m);
        goto done;
    }
    /* 2. every allocation */
    if (keys_reserve_n(&self->keys, m) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        Node *n = node_alloc(self);
        if (n == NULL) {
            goto done;
        }
        n->next = spare;
        spare = n;
    }
    /* 3. no Python code runs from here: the last key first, each to probation's LRU end, its
       count taken out of the sketch (FrequencySketch.take) */
    for (Py_ssize_t j = m - 1; j >= 0; j--) {
        Node *n = spare;
        spare = n->next;
        PyObject *k = PyTuple_GET_ITEM(seq, j);
        uint64_t h = hs[j];
        Py_INCREF(k);
        n->key = k;
        n->hash = h;
        n->weight = 1;
        n->freq = cap15(counts_pop(self, h)) + self->door[door_index(self, h)];
        n->flag = 0;
        table_place(&self->keys, h, (uintptr_t)n);
        r_prepend(&self->prob, n, R_PROBATION);
    }
    self->total += (int64_t)m;
    ok = 1;
done:
    while (spare != NULL) {
        Node *next = spare->next;
        node_free(self, spare);
        spare = next;
    }
    PyMem_Free(hs);
    self->busy = 0;
    Py_XDECREF(seen);
    Py_DECREF(seq);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Check a weight ``w`` given for ``key`` by set_weights: 0 and *out, or -1 with an exception
   (the Python class's checks, in its order). */
static int set_weights_check(PyObject *key, PyObject *w, int64_t *out)
{
    if (!PyLong_Check(w) || PyBool_Check(w)) {
        PyErr_Format(PyExc_TypeError,
                     "TinyLFUPolicy.set_weights: the weight of key %R must be an int, got %R", key,
                     w);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(w, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && v < 0)) {
        PyErr_Format(PyExc_ValueError,
                     "TinyLFUPolicy.set_weights: the weight of key %R must be >= 0, got %R", key,
                     w);
        return -1;
    }
    if (overflow > 0) {
        PyErr_Format(PyExc_OverflowError,
                     "TinyLFUPolicy.set_weights: the weight of key %R must be < 2**63, got %R",
                     key, w);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static PyObject *Policy_set_weights(Policy *self, PyObject *mapping)
{
    /* why a dict fast path: the adoption passes a dict; any other Mapping is read through its
       get(), as the Python class reads every mapping */
    int exact = PyDict_CheckExact(mapping);
    PyObject *get = NULL;
    if (!exact) {
        int r = PyObject_IsInstance(mapping, MappingABC);
        if (r <= 0) {
            if (r == 0) {
                PyErr_Format(PyExc_TypeError,
                             "TinyLFUPolicy.set_weights: needs a mapping, got %R", mapping);
            }
            return NULL;
        }
        get = PyObject_GetAttrString(mapping, "get");
        if (get == NULL) {
            return NULL;
        }
    }
    if (enter(self, "set_weights") < 0) {
        Py_XDECREF(get);
        return NULL;
    }
    Region *regions[3] = {&self->prob, &self->prot, &self->win};
    Py_ssize_t n = self->prob.len + self->prot.len + self->win.len;
    int64_t *ws = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    PyObject *one = PyLong_FromLong(1);
    int ok = 0;
    int64_t total = 0;
    if (ws == NULL || one == NULL) {
        if (ws == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    /* 1. read and check every new weight (lookups run keys' __eq__ and get() any code; busy
       keeps the residents as they are) */
    Py_ssize_t j = 0;
    for (int r = 0; r < 3; r++) {
        for (Node *nd = regions[r]->head.next; nd != &regions[r]->head; nd = nd->next) {
            PyObject *key = nd->key;
            PyObject *w;
            Py_INCREF(key);
            if (exact) {
                w = PyDict_GetItemWithError(mapping, key);
                if (w == NULL && !PyErr_Occurred()) {
                    w = one;
                }
                Py_XINCREF(w);
            }
            else {
                w = PyObject_CallFunctionObjArgs(get, key, one, NULL);
            }
            int bad = w == NULL || set_weights_check(key, w, &ws[j]) < 0;
            Py_XDECREF(w);
            if (!bad && __builtin_add_overflow(total, ws[j], &total)) {
                PyErr_Format(PyExc_OverflowError,
                             "TinyLFUPolicy.set_weights: the total weight would overflow int64 "
                             "at key %R",
                             key);
                bad = 1;
            }
            Py_DECREF(key);
            if (bad) {
                goto done;
            }
            j++;
        }
    }
    /* 2. commit, no Python code runs */
    j = 0;
    int64_t sums[3] = {0, 0, 0};
    for (int r = 0; r < 3; r++) {
        for (Node *nd = regions[r]->head.next; nd != &regions[r]->head; nd = nd->next) {
            nd->weight = ws[j++];
            sums[r] += nd->weight;
        }
    }
    self->pw = sums[1];
    self->ww = sums[2];
    self->total = total;
    ok = 1;
done:
    PyMem_Free(ws);
    self->busy = 0;
    Py_XDECREF(one);
    Py_XDECREF(get);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* A simulation's read-or-insert of ``key``: the read recorded; a key not resident is then added
   with weight 1, its victims left in *vs (the caller releases or lists them once ``busy`` is
   off). 1 a hit, 0 a miss, -1 an exception. */
/* access(key), or with ``write`` a write of ``key`` that follows no read of it: a resident key
   is a hit either way; an absent one is added as add(key, 1) adds it (the write counted as one
   access, no read miss recorded: what policy="tinylfu" does for a set without a get), where
   access() takes a read miss and then the add. */
static int policy_access_w(Policy *self, PyObject *key, Chain *vs, int write)
{
    if (enter(self, "access") < 0) {
        return -1;
    }
    Py_INCREF(key);
    Py_hash_t hh = key_hash(key);
    Node *node;
    int r = hh == -1 ? -1 : keys_lookup(self, key, (uint64_t)hh, &node);
    if (r == 0 && write) {
        if (do_add_chain(self, key, (uint64_t)hh, 1, vs, 0) < 0) { /* as add(key, 1) */
            r = -1;
        }
        self->busy = 0;
        Py_DECREF(key);
        return r;
    }
    if (r == 0) {
        /* why: the add below reads the key's count and doorkeeper byte (and the regret
           table's slot) at random places: ask for all three at once */
        prefetch_sketch(self, (uint64_t)hh);
        if (self->rtab != NULL) {
            PREFETCH(&self->rtab[((uint64_t)hh * GOLDEN) >> (64 - self->rbits)], 1);
        }
    }
    if (r == 0 && can_aside(self, (uint64_t)hh)) {
        if (do_add_chain(self, key, (uint64_t)hh, 1, vs, 1) < 0) {
            r = -1;
        }
    }
    else if (r >= 0) {
        /* the hit or the miss (under busy: a dropped oldest read's finalizer cannot mutate) */
        ring_push(self, key);
        if (r == 0 && do_add_chain(self, key, (uint64_t)hh, 1, vs, 0) < 0) {
            r = -1;
        }
    }
    self->busy = 0;
    Py_DECREF(key);
    return r;
}

static int policy_access(Policy *self, PyObject *key, Chain *vs)
{
    return policy_access_w(self, key, vs, 0);
}

/* TinyLFUPolicy.access: policy_access, its victims released unlisted. */
static PyObject *Policy_access(Policy *self, PyObject *key)
{
    Chain vs = {NULL, NULL, 0};
    int r = policy_access(self, key, &vs);
    chain_release(self, &vs);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

/* step()'s and take()'s start: ``write`` (an argument, NULL: False), then the access. 1 a hit,
   0 a miss (its victims chained into *vs), -1 an exception (the chain released). */
static int access_args(Policy *self, PyObject *key, PyObject *write_arg, Chain *vs)
{
    int write = write_arg != NULL ? PyObject_IsTrue(write_arg) : 0;
    int r = write < 0 ? -1 : policy_access_w(self, key, vs, write);
    if (r != 0) {
        chain_release(self, vs);
    }
    return r;
}

/* TinyLFUPolicy.step(key, other=None): policy_access returning None on a hit, else how many of
   its victims ``other`` lacks (0 when other is None). Why a count, not the list: the default
   policy steps its twin so on every miss, and a list per miss is an allocation that also
   brings the cycle collector round sooner. */
static PyObject *Policy_step(Policy *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "step() takes 1 to 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *other = nargs >= 2 ? args[1] : Py_None;
    Chain vs = {NULL, NULL, 0};
    int r = access_args(self, args[0], nargs == 3 ? args[2] : NULL, &vs);
    if (r != 0) {
        return r < 0 ? NULL : Py_NewRef(Py_None);
    }
    /* the chain is ours alone (detached, busy off): ``in`` may run Python code */
    Py_ssize_t lacks = 0;
    if (other != Py_None) {
        Py_INCREF(other);
        for (Node *n = vs.head; n != NULL; n = n->next) {
            int in = PySequence_Contains(other, n->key);
            if (in < 0) {
                lacks = -1;
                break;
            }
            lacks += !in;
        }
        Py_DECREF(other);
    }
    chain_release(self, &vs);
    return lacks < 0 ? NULL : PyLong_FromSsize_t(lacks);
}

/* take(key): access(key) that returns None on a hit, else the list of the evicted keys (the
   default policy's view of an adopted twin keeps the ones the cache holds: _policy_auto). */
static PyObject *Policy_take(Policy *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "take() takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    Chain vs = {NULL, NULL, 0};
    int r = access_args(self, args[0], nargs == 2 ? args[1] : NULL, &vs);
    if (r != 0) {
        return r < 0 ? NULL : Py_NewRef(Py_None);
    }
    return victims_list(self, &vs);
}

/* -- reads and properties ------------------------------------------------------------------ */

static Py_ssize_t Policy_len(Policy *self) { return self->keys.used; }

static int Policy_contains(Policy *self, PyObject *key)
{
    Py_hash_t hh = key_hash(key);
    if (hh == -1) {
        return -1;
    }
    /* == may run Python code: hold off mutations meanwhile (a nested lookup is harmless) */
    int was_busy = self->busy;
    self->busy = 1;
    Node *node;
    Py_INCREF(key);
    int r = keys_lookup(self, key, (uint64_t)hh, &node);
    Py_DECREF(key);
    self->busy = was_busy;
    return r;
}

static PyObject *bound_or_none(int64_t v)
{
    if (v < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(v);
}

static PyObject *Policy_get_weight(Policy *self, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(self->total);
}

static PyObject *Policy_get_window_fraction(Policy *self, void *Py_UNUSED(c))
{
    int64_t m = maximum(self);
    return PyFloat_FromDouble(m ? (double)self->wmax / (double)m : 1.0);
}

static PyObject *Policy_get_max_entries(Policy *self, void *Py_UNUSED(c))
{
    return bound_or_none(self->max_entries);
}

static PyObject *Policy_get_max_weight(Policy *self, void *Py_UNUSED(c))
{
    return bound_or_none(self->max_weight);
}

static PyObject *Policy_get_read_buffer(Policy *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->rmax);
}

static PyObject *Policy_get_adaptive(Policy *self, void *Py_UNUSED(c))
{
    Py_INCREF(self->adaptive_obj ? self->adaptive_obj : Py_None);
    return self->adaptive_obj ? self->adaptive_obj : Py_None;
}

static int Policy_set_adaptive(Policy *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete adaptive");
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        return -1;
    }
    PyObject *old = self->adaptive_obj;
    Py_INCREF(value);
    self->adaptive_obj = value;
    self->adaptive = truth;
    Py_XDECREF(old);
    return 0;
}

static PyObject *Policy_get_climber(Policy *self, void *Py_UNUSED(c))
{
    PyObject *v = self->climber_obj ? self->climber_obj : STR_SAMPLE;
    Py_INCREF(v);
    return v;
}

static PyObject *Policy_get_climber_moves(Policy *self, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(self->climber_moves);
}

/* For tests: the shadow climber's state, None while it is off. */
static PyObject *Policy_get_shadow_state(Policy *self, void *Py_UNUSED(c))
{
    if (self->sh_up == NULL) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("{sOsOsLsLsLsLsLsLsLsdsLsK}", "down", (PyObject *)self->sh_down, "up",
                         (PyObject *)self->sh_up, "seen", (long long)self->sh_seen, "dis_up",
                         (long long)self->dis_up, "dis_down", (long long)self->dis_down,
                         "new_up", (long long)self->new_up, "new_down",
                         (long long)self->new_down, "long_up", (long long)self->long_up,
                         "long_down", (long long)self->long_down, "probe", self->sh_probe,
                         "cap", (long long)self->sh_cap, "limit",
                         (unsigned long long)self->sh_limit);
}

static PyObject *Policy_get_ghost(Policy *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->ghost);
}

/* For tests: (ghost admissions, regrets, score, exploration counter, flagged keys). */
static PyObject *Policy_get_ghost_state(Policy *self, void *Py_UNUSED(c))
{
    return Py_BuildValue("(LLLLn)", (long long)self->ghost_admits, (long long)self->regrets,
                         (long long)self->gscore, (long long)self->gexplore, self->nflag);
}

static PyMethodDef Policy_methods[] = {
    {"hit", (PyCFunction)Policy_record, METH_O,
     "Record a read of a resident key (appended to the read buffer)."},
    {"miss", (PyCFunction)Policy_record, METH_O,
     "Record a read of a non-resident key (appended to the read buffer)."},
    {"add", (PyCFunction)(void (*)(void))Policy_add, METH_FASTCALL,
     "Insert key into the window and return the keys to evict (never key)."},
    {"update", (PyCFunction)(void (*)(void))Policy_update, METH_FASTCALL,
     "Record a new weight for key (a write counts as a use) and return keys to evict."},
    {"remove", (PyCFunction)Policy_remove, METH_O, "Forget key; unknown keys are ignored."},
    {"clear", (PyCFunction)Policy_clear, METH_NOARGS,
     "Forget every key and every count; keep the bounds and the window share."},
    {"resize", (PyCFunction)(void (*)(void))Policy_resize, METH_FASTCALL,
     "Change the bounds (the window keeps its share) and return the keys to evict."},
    {"copy", (PyCFunction)Policy_copy, METH_NOARGS,
     "Return an independent copy (the same key objects) that makes the same decisions."},
    {"order", (PyCFunction)Policy_order, METH_NOARGS,
     "Return the resident (key, weight) pairs, least valuable first (probation, protected, "
     "window; each LRU to MRU). Buffered reads are not replayed first."},
    {"prepend", (PyCFunction)Policy_prepend, METH_O,
     "Make keys (least valuable first, none resident, none twice) resident at probation's LRU "
     "end, weight 1 each; nothing is evicted."},
    {"set_weights", (PyCFunction)Policy_set_weights, METH_O,
     "Set every resident key's weight to mapping.get(key, 1); recompute the tallies."},
    {"access", (PyCFunction)Policy_access, METH_O,
     "Simulate one read-or-insert of key (a memo's step); return True on a hit."},
    {"take", (PyCFunction)(void (*)(void))Policy_take, METH_FASTCALL,
     PyDoc_STR("take(key, write=False) -> list | None: access(key) (with write: a set without "
               "a get); None on a hit, else the evicted keys")},
    {"step", (PyCFunction)(void (*)(void))Policy_step, METH_FASTCALL,
     "step(key, other=None, /)\n--\n\nSimulate access(key); return None on a hit, else how "
     "many of its victims other lacks (0 when other is None)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Policy_getset[] = {
    {"weight", (getter)Policy_get_weight, NULL, "The sum of the resident keys' weights.", NULL},
    {"window_fraction", (getter)Policy_get_window_fraction, NULL,
     "The current share of the maximum given to the window (the climber moves it).", NULL},
    {"max_entries", (getter)Policy_get_max_entries, NULL, "The entry bound (None: unbounded).",
     NULL},
    {"max_weight", (getter)Policy_get_max_weight, NULL, "The weight bound (None: unbounded).",
     NULL},
    {"read_buffer", (getter)Policy_get_read_buffer, NULL,
     "The read buffer's length (reads kept between two writes).", NULL},
    {"adaptive", (getter)Policy_get_adaptive, (setter)Policy_set_adaptive,
     "Whether the hill climber moves capacity between window and main.", NULL},
    {"climber", (getter)Policy_get_climber, NULL,
     "The window climber asked for: 'sample' or 'shadow'.", NULL},
    {"_shadow_state", (getter)Policy_get_shadow_state, NULL,
     "For tests: the shadow climber's state (a dict), None while it is off.", NULL},
    {"climber_moves", (getter)Policy_get_climber_moves, NULL,
     "How many window moves the shadow climber made (0 while it is not active).", NULL},
    {"ghost", (getter)Policy_get_ghost, NULL,
     "Whether ghost admission with regret is on (see the Python module essay).", NULL},
    {"_ghost_state", (getter)Policy_get_ghost_state, NULL,
     "For tests: (ghost admissions, regrets, score, exploration counter, flagged keys).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Policy_as_sequence = {
    .sq_length = (lenfunc)Policy_len,
    .sq_contains = (objobjproc)Policy_contains,
};

PyDoc_STRVAR(Policy_doc,
             "TinyLFUPolicy(max_entries, max_weight, *, window=0.01, adaptive=True, "
             "read_buffer=None, climber='shadow', ghost=True)\n--\n\n"
             "Adaptive W-TinyLFU in C, decision-identical to "
             "perflayer.cache._policy.TinyLFUPolicy.");

static PyTypeObject PolicyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "perflayer.cache._tinylfu_c.TinyLFUPolicy",
    .tp_basicsize = sizeof(Policy),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Policy_doc,
    .tp_new = Policy_new,
    .tp_dealloc = (destructor)Policy_dealloc,
    .tp_traverse = (traverseproc)Policy_traverse,
    .tp_clear = (inquiry)Policy_tp_clear,
    .tp_methods = Policy_methods,
    .tp_getset = Policy_getset,
    .tp_as_sequence = &Policy_as_sequence,
};

/* -- the C API of the core's new-key insert (perflayer.cache._fastpath_c) ------------------ */

/* Start loading the memory that an add of a key of hash ``hh`` reads at random places: its home
   slot in the resident keys' table (a miss of the lookup, then the insert's slot) and in the
   sketch's counts, and its doorkeeper byte. _fastpath_c's set calls it first, before its own
   dict lookup, clock read and entry: the policy's misses then overlap with that work and with
   each other instead of stalling the add one after another. Why: in a growing cache the keys'
   table (16 bytes a slot, at most half full: 2-4 MB at 100,000 keys) and the doorkeeper (1 MB)
   are far larger than the CPU caches, so each of these reads was a miss to memory; perf
   (cpu-clock samples) put ~0.3 us of a filling TTL set in keys_lookup alone, for ~50
   instructions (benchmarks-cache-latency.md). Changes nothing but what the CPU caches hold; an
   object that is not exactly a TinyLFUPolicy is ignored. No Python code runs, no exception is
   set. */
static void policy_prefetch(PyObject *p, Py_hash_t hh)
{
    if (!Py_IS_TYPE(p, &PolicyType)) {
        return;
    }
    Policy *self = (Policy *)p;
    uint64_t h = (uint64_t)hh;
    if (self->keys.slots != NULL) {
        PREFETCH(&self->keys.slots[home(h, &self->keys)], 1);
    }
    if (self->door != NULL) {
        PREFETCH(&self->door[door_index(self, h)], 1);
    }
    if (self->counts.slots != NULL) {
        PREFETCH(&self->counts.slots[home(h, &self->counts)], 0);
    }
}

/* ``policy.add(key, weight)`` of an exact TinyLFUPolicy (``p`` is one: the caller checks
   ``policy_is``), without the call's argument tuple of the method and with None instead of a
   new empty list when nothing leaves (a cache filling up: the list was made, truth-tested and
   freed on every new key). The same decisions, errors and effects as the method; a non-empty
   result is the method's list. New reference, or NULL with an exception set. */
static PyObject *policy_add_c(PyObject *p, PyObject *key, PyObject *weight)
{
    PyObject *args[2] = {key, weight};
    return do_write((Policy *)p, args, 2, "add", 0, 1);
}

static int policy_is(PyObject *p) { return Py_IS_TYPE(p, &PolicyType); }

/* The capsule ``_tinylfu_c._C_API`` (name: "perflayer.cache._tinylfu_c._C_API"): a
   ``PolicyCAPI`` (_capi.h). */

static PolicyCAPI c_api = {1, policy_is, policy_prefetch, policy_add_c, (PyCFunction)Policy_add};

static PyMethodDef tinylfu_functions[] = {
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef tinylfu_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perflayer.cache._tinylfu_c",
    .m_doc = "TinyLFUPolicy in C, decision-identical to perflayer.cache._policy.TinyLFUPolicy.",
    .m_size = -1,
    .m_methods = tinylfu_functions,
};

PyMODINIT_FUNC PyInit__tinylfu_c(void)
{
    PyObject *errors = PyImport_ImportModule("perflayer.errors");
    if (errors == NULL) {
        return NULL;
    }
    ConfigError = PyObject_GetAttrString(errors, "ConfigError");
    Py_DECREF(errors);
    if (ConfigError == NULL) {
        return NULL;
    }
    PyObject *abc = PyImport_ImportModule("collections.abc");
    if (abc == NULL) {
        return NULL;
    }
    MappingABC = PyObject_GetAttrString(abc, "Mapping");
    Py_DECREF(abc);
    if (MappingABC == NULL) {
        return NULL;
    }
    STR_SHADOW = PyUnicode_InternFromString("shadow");
    if (STR_SHADOW == NULL) {
        return NULL;
    }
    STR_SAMPLE = PyUnicode_InternFromString("sample");
    if (STR_SAMPLE == NULL) {
        return NULL;
    }
    if (PyType_Ready(&PolicyType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&tinylfu_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&PolicyType);
    if (PyModule_AddObject(m, "TinyLFUPolicy", (PyObject *)&PolicyType) < 0) {
        Py_DECREF(&PolicyType);
        Py_DECREF(m);
        return NULL;
    }
    PyObject *cap = PyCapsule_New(&c_api, "perflayer.cache._tinylfu_c._C_API", NULL);
    if (cap == NULL || PyModule_AddObject(m, "_C_API", cap) < 0) {
        Py_XDECREF(cap);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
