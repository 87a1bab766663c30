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
 * - on an allocation failure the sketch degrades (a count or the doorkeeper resize is dropped)
 *   instead of raising in the middle of a write.
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

enum { R_WINDOW = 0, R_PROBATION = 1, R_PROTECTED = 2, R_NONE = 3 };

static PyObject *ConfigError = NULL;

typedef struct Node {
    struct Node *prev;
    struct Node *next;
    PyObject *key; /* strong */
    uint64_t hash;
    int64_t weight;
    int64_t freq;
    int region;
} Node;

typedef struct {
    Node head; /* sentinel of a circular list: head.next is the LRU end, head.prev the MRU end */
    Py_ssize_t len;
} Region;

typedef struct {
    uint64_t hash;
    uintptr_t val; /* 0: empty */
} Slot;

typedef struct {
    Slot *slots;
    int bits;
    Py_ssize_t used;
} Table;

typedef struct {
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
    /* spare nodes */
    Node *freelist;
    int nfree;
} Policy;

/* -- small helpers ------------------------------------------------------------------------- */

static inline int64_t i64min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t i64max(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t cap15(int64_t c) { return c < COUNTER_MAX ? c : COUNTER_MAX; }

static inline Py_ssize_t home(uint64_t h, int bits) { return (Py_ssize_t)((h * GOLDEN) >> (64 - bits)); }

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
    Py_ssize_t i = home(h, t->bits);
    while (t->slots[i].val != 0) {
        i = (i + 1) & mask;
    }
    t->slots[i].hash = h;
    t->slots[i].val = val;
    t->used++;
}

/* Make room for one more entry; -1 (no exception set) if that needs memory that is not there.
   No Python code runs. */
static int table_reserve(Table *t)
{
    if (2 * (t->used + 1) <= ((Py_ssize_t)1 << t->bits)) {
        return 0;
    }
    Table bigger = {NULL, 0, 0};
    if (table_init(&bigger, t->bits + 1) < 0) {
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
        Py_ssize_t k = home(slots[j].hash, t->bits);
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

/* -- the resident keys --------------------------------------------------------------------- */

/* Find ``key``: 1 found (*out), 0 absent, -1 an exception from ==. Holds a reference to the
   compared key across ==; nothing can mutate the table meanwhile (busy). */
static int keys_lookup(Policy *self, PyObject *key, uint64_t h, Node **out)
{
    Table *t = &self->keys;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t->bits);
    for (;;) {
        Node *n = (Node *)t->slots[i].val;
        if (n == NULL) {
            *out = NULL;
            return 0;
        }
        if (t->slots[i].hash == h) {
            PyObject *k = n->key;
            if (k == key) {
                *out = n;
                return 1;
            }
            Py_INCREF(k);
            int r = PyObject_RichCompareBool(k, key, Py_EQ);
            Py_DECREF(k);
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
    Py_ssize_t i = home(n->hash, t->bits);
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
    Py_ssize_t i = home(h, t->bits);
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

static int bit_length(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

/* FrequencySketch._size; returns -1 (no exception set) if the doorkeeper was not resized. */
static int sketch_size(Policy *self, int64_t capacity)
{
    self->capacity = i64max(MIN_CAPACITY, capacity);
    self->period = SAMPLE_FACTOR * self->capacity;
    int bits = bit_length((uint64_t)(8 * self->capacity - 1));
    if (bits < 10) {
        bits = 10;
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
    Table aged = {NULL, 0, 0};
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

static void size_regions(Policy *self, double window)
{
    int64_t m = maximum(self);
    self->wmax = m ? i64max(1, (int64_t)rint(window * (double)m)) : 0;
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
static PyObject *Policy_record(Policy *self, PyObject *key)
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
            Py_RETURN_NONE; /* lossy buffer: drop this read */
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
    for (j = 0; j < n; j++) {
        PyObject *key = reads_at(&reads, j);
        Py_hash_t hh = PyObject_Hash(key);
        if (hh == -1) {
            err = 1;
            break;
        }
        Node *node;
        int r = keys_lookup(self, key, (uint64_t)hh, &node);
        if (r < 0) {
            err = 1;
            break;
        }
        if (r == 0) {
            last_miss = key;
            misses++;
            sketch_increment(self, (uint64_t)hh);
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
            if (c != new_node && cap15(c->freq) <= cap15(v->freq) + ADMIT_MARGIN) {
                /* rejected: the candidate leaves */
                discard(self, c);
                chain_push(out, c);
                c = next;
                continue;
            }
            /* admitted: the victim leaves and the candidate enters probation */
            drop(self, v);
            chain_push(out, v);
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
    Py_INCREF(lm);
    int eq = PyObject_RichCompareBool(lm, key, Py_EQ);
    Py_DECREF(lm);
    if (eq < 0) {
        return -1;
    }
    set_last_miss(self, NULL, release);
    return !eq;
}

/* TinyLFUPolicy.add for a key known absent. */
static PyObject *do_add(Policy *self, PyObject *key, uint64_t h, int64_t weight)
{
    /* reserve first: nothing below can fail once the buffer is handled */
    if (table_reserve(&self->keys) < 0) {
        PyErr_NoMemory();
        return NULL;
    }
    Node *node = node_alloc(self);
    if (node == NULL) {
        return NULL;
    }
    int count = -1;
    PyObject *release = NULL;
    if (self->rlen) {
        int eq = 0;
        if (self->rlen == 1) {
            PyObject *b = self->ring[self->rhead];
            Py_INCREF(b);
            eq = PyObject_RichCompareBool(b, key, Py_EQ);
            Py_DECREF(b);
            if (eq < 0) {
                node_free(self, node);
                return NULL;
            }
        }
        if (eq) {
            /* cache-aside: the only buffered read is the miss that led to this add; counting it
               here skips a replay */
            ring_clear(self);
            self->requests++;
            set_last_miss(self, NULL, &release);
            count = 1;
        }
        else if (drain(self) < 0) {
            node_free(self, node);
            return NULL;
        }
    }
    if (count < 0) {
        /* the read miss before this write, or the write itself: one access either way */
        count = counts_as_access(self, key, &release);
        if (count < 0) {
            node_free(self, node);
            return NULL;
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
        if (self->additions >= self->period || self->requests >= self->climb_sample) {
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
    table_place(&self->keys, h, (uintptr_t)node);
    r_append(&self->win, node, R_WINDOW);
    self->ww += weight;
    self->total += weight;
    Chain vs = {NULL, NULL, 0};
    if (window_size(self) > self->wmax || over(self)) {
        evict(self, node, &vs);
    }
    PyObject *result = victims_list(self, &vs);
    Py_XDECREF(release);
    return result;
}

/* add() and update(): the buffer is replayed first (update) or once the key is known absent
   (add, which then counts a buffered miss of the same key as this write's access). */
static PyObject *do_write(Policy *self, PyObject *const *args, Py_ssize_t nargs, const char *name,
                       int replay_first)
{
    int64_t weight;
    if (parse_key_weight(args, nargs, name, &weight) < 0 || enter(self, name) < 0) {
        return NULL;
    }
    PyObject *key = args[0];
    PyObject *result = NULL;
    Py_INCREF(key);
    if (!replay_first || self->rlen == 0 || drain(self) == 0) {
        Py_hash_t hh = PyObject_Hash(key);
        Node *node;
        int r = hh == -1 ? -1 : keys_lookup(self, key, (uint64_t)hh, &node);
        if (r == 1) {
            if (replay_first || self->rlen == 0 || drain(self) == 0) {
                result = do_update(self, node, weight);
            }
        }
        else if (r == 0) {
            result = do_add(self, key, (uint64_t)hh, weight);
        }
    }
    self->busy = 0;
    Py_DECREF(key);
    return result;
}

static PyObject *Policy_add(Policy *self, PyObject *const *args, Py_ssize_t nargs)
{
    return do_write(self, args, nargs, "add", 0);
}

static PyObject *Policy_update(Policy *self, PyObject *const *args, Py_ssize_t nargs)
{
    return do_write(self, args, nargs, "update", 1);
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
        Py_hash_t hh = PyObject_Hash(key);
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
    /* the sketch first: nothing below runs Python code until forget_all releases keys */
    table_clear(&self->counts);
    if (self->door != NULL) {
        memset(self->door, 0, (size_t)1 << self->dbits);
    }
    self->additions = 0;
    self->hits = self->requests = 0;
    forget_all(self);
    self->busy = 0;
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
        self->max_entries = me;
        self->max_weight = mw;
        size_regions(self, share);
        /* the protected target may have shrunk, and the window now counts in other units */
        demote_protected(self);
        Chain vs = {NULL, NULL, 0};
        evict(self, NULL, &vs);
        result = victims_list(self, &vs);
    }
    self->busy = 0;
    return result;
}

/* -- construction, GC ---------------------------------------------------------------------- */

static PyObject *Policy_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_entries", "max_weight", "window", "adaptive", "read_buffer",
                             NULL};
    PyObject *max_entries, *max_weight;
    PyObject *window = NULL, *adaptive = Py_True, *read_buffer = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OOO:TinyLFUPolicy", kwlist, &max_entries,
                                     &max_weight, &window, &adaptive, &read_buffer)) {
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
    int truth = PyObject_IsTrue(adaptive);
    if (truth < 0) {
        return NULL;
    }
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
    if (table_init(&self->counts, 4) < 0 || table_init(&self->keys, 4) < 0) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->capacity = 0;
    if (sketch_size(self, capacity_hint(self)) < 0) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    size_regions(self, wshare);
    return (PyObject *)self;
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
    return 0;
}

static int Policy_tp_clear(Policy *self)
{
    forget_all(self);
    Py_CLEAR(self->adaptive_obj);
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
    while (self->freelist != NULL) {
        Node *next = self->freelist->next;
        PyMem_Free(self->freelist);
        self->freelist = next;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- reads and properties ------------------------------------------------------------------ */

static Py_ssize_t Policy_len(Policy *self) { return self->keys.used; }

static int Policy_contains(Policy *self, PyObject *key)
{
    Py_hash_t hh = PyObject_Hash(key);
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
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Policy_as_sequence = {
    .sq_length = (lenfunc)Policy_len,
    .sq_contains = (objobjproc)Policy_contains,
};

PyDoc_STRVAR(Policy_doc,
             "TinyLFUPolicy(max_entries, max_weight, *, window=0.01, adaptive=True, "
             "read_buffer=None)\n--\n\n"
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

static struct PyModuleDef tinylfu_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perflayer.cache._tinylfu_c",
    .m_doc = "TinyLFUPolicy in C, decision-identical to perflayer.cache._policy.TinyLFUPolicy.",
    .m_size = -1,
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
    return m;
}
