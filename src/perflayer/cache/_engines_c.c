/*
 * perflayer.cache._engines_c: C twins of the adaptive policy's engines
 * (perflayer/cache/_policy_adaptive.py; read that module's essay first): ARCEngine, the twin of
 * _ARCEngine (Megiddo and Modha, FAST 2003), and LIRSEngine, the twin of _LIRSEngine (Jiang and
 * Zhang, SIGMETRICS 2002; its layout is described above its code below). For every sequence of
 * calls each returns the same victims in the same order, the same order() and the same internal
 * lists (ghosts, stack, history) as the Python class (tests/cache/test_engines_c.py checks it
 * step by step). AdaptivePolicy runs them when the extension is built (PERFLAYER_PURE_PYTHON
 * selects the Python classes); its adoption path uses copy() and set_weights(). take() is
 * access() returning the victims (None on a hit), as the Python engines' take(). SimEngine, at
 * the end, is the twin of _policy_auto.SimEngine: a LIRS, ARC or (C) TinyLFU simulation seen as
 * the cache's engine (read its note there). Weights are
 * int64: where Python's int would grow past it, add(), update(), load() and set_weights() raise
 * OverflowError and change nothing (the one place the twins may differ).
 *
 * Layout: every key the engine knows (resident in T1 or T2, or a ghost in B1 or B2) has one
 * node; each of the four lists is an intrusive circular doubly linked list with a sentinel
 * (OrderedDict order: head.next is the LRU end, head.prev the MRU end), and one open-addressing
 * table of 8-byte (hash tag, node index) slots finds a key's node (linear probing, at most a
 * quarter full, backward-shift deletion); the nodes live in the engine's arena, which gives
 * them their indices. A key lives in at most one list, as in
 * the Python class. Where Python deletes a key from one OrderedDict and inserts the argument
 * into another (T1 -> T2 on a hit, B1/B2 -> T2 on a ghost hit, a ghost prepended into T1), the
 * node keeps its place in the table and takes the argument as its key object, so order()
 * returns the very objects Python's would.
 *
 * Where these differ from the Python classes (never on AdaptivePolicy's calls):
 * - the capacity is an int >= 0 (a negative or non-int one is a ValueError / TypeError here;
 *   Python's ARC fails later with a KeyError from an empty OrderedDict). With capacity 0 ARC's
 *   add of a new key raises KeyError("dictionary is empty") and changes nothing, as Python's.
 * - access() (a simulation step) keeps no weights, as Python's; where Python then raises
 *   KeyError from ``wt`` (an add or remove of a key that only access() made resident) these
 *   take the weight as 1.
 * - weights are C int64 (TypeError for a non-int, OverflowError beyond).
 * - prepend() of a resident key raises ValueError naming it (Python's puts it in T1 twice or
 *   counts its weight twice); load() into an engine that knows keys, or with a repeated key,
 *   raises ValueError (Python's "fill an empty engine" contract, unchecked there).
 * - resize(max_entries=None or max_weight not None) raises AssertionError as Python's assert
 *   does (even under python -O).
 * - hash() and == are called on different objects and a different number of times than by four
 *   OrderedDicts: a key whose __eq__ disagrees with its __hash__ can behave differently.
 *
 * Code shared by the two engines. Both types start with an ``Engine`` (the key table, c, the
 * weight total, the read buffer, the busy flag and the node arena) and name an ``EngineOps``
 * of their own: the steps that differ (find, hit, place a loaded or prepended key, resize,
 * walk the residents, forget everything). The methods whose logic is the same (add/update,
 * access, _drain, remove, clear, resize, order, load, prepend, copy, set_weights, ``in``, the
 * getters and ``_buf``) are written once below and call those steps; the algorithms themselves
 * (ARC's insert/replace, LIRS's stack, queue and history) stay with their type.
 *
 * Safety. The engine holds strong references to its keys and to the read buffer, and supports
 * the cycle collector. hash() and == may run Python code: every mutating method sets `busy`,
 * so a re-entrant mutating call raises RuntimeError; reads (len, in, order) are allowed and see
 * a consistent structure (Python code runs only between steps, and a key is released only after
 * its node is unlinked).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "_capi.h"

#define GOLDEN 0x9E3779B97F4A7C15ULL
#define READ_BUFFER 1024 /* _policy._READ_BUFFER: the default buffer's maxlen */

static PyObject *DequeType = NULL; /* collections.deque */
static PyObject *STR_CLEAR = NULL;   /* "clear" */
static PyObject *STR_TAKE = NULL;    /* "take" */
static PyObject *STR_RESIZE = NULL;  /* "resize" */
static PyObject *STR_ORDER = NULL;   /* "order" */
static PyObject *STR_MAX_ENTRIES = NULL; /* "max_entries" */
static PyObject *DEQUE_CLEAR = NULL; /* deque.clear */
#define DRAIN_SMALL 32               /* reads replayed from a C array, not a new list */

/* -- the node arena ------------------------------------------------------------------------ */

/* Every node of an engine lives in its arena: chunks of 2**CHUNK_BITS nodes of one size, never
   moved or freed before the engine is (clear() keeps them for reuse), so a node has a 32-bit
   index and the key table stores indices, not pointers. A node's first 4 bytes hold its index
   (both node types start with ``uint32_t idx``); a free node links the free list through its
   second word. why: 8-byte slots (a 32-bit hash tag and a 32-bit index) instead of 16 put twice
   the slots in a cache line and let the table stay at most a quarter full for the memory a half
   full one took: shorter probes, fewer branch misses and cache misses per find (each access
   finds once, and a miss stream also places and removes). */

#define CHUNK_BITS 7
#define CHUNK_MASK ((1u << CHUNK_BITS) - 1)
#define NODE_LINK 8 /* the byte offset of a free node's link */

typedef struct {
    char **chunks;
    uint32_t nchunks;
    uint32_t achunks; /* room in ``chunks`` */
    uint32_t carved;  /* nodes handed out so far: the next fresh index */
    size_t size;      /* a node's size */
    void *free;       /* free nodes */
} Arena;

static inline void *arena_at(const Arena *a, uint32_t i)
{
    return a->chunks[i >> CHUNK_BITS] + (size_t)(i & CHUNK_MASK) * a->size;
}

static inline uint32_t node_idx(const void *n) { return *(const uint32_t *)n; }

/* A node's memory (its index set, other fields unset), or NULL with MemoryError. */
static inline void *arena_take(Arena *a)
{
    void *n = a->free;
    if (n != NULL) {
        memcpy(&a->free, (char *)n + NODE_LINK, sizeof(void *));
        return n;
    }
    if ((a->carved >> CHUNK_BITS) == a->nchunks) {
        if (a->nchunks >= (UINT32_MAX >> CHUNK_BITS) - 1) {
            PyErr_NoMemory();
            return NULL;
        }
        if (a->nchunks == a->achunks) {
            uint32_t m = a->achunks ? 2 * a->achunks : 8;
            char **c = PyMem_Realloc(a->chunks, (size_t)m * sizeof(char *));
            if (c == NULL) {
                PyErr_NoMemory();
                return NULL;
            }
            a->chunks = c;
            a->achunks = m;
        }
        char *chunk = PyMem_Malloc(a->size << CHUNK_BITS);
        if (chunk == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        a->chunks[a->nchunks++] = chunk;
    }
    uint32_t i = a->carved++;
    n = arena_at(a, i);
    memcpy(n, &i, sizeof(i));
    return n;
}

/* Keep a node no longer in use for reuse. */
static inline void arena_give(Arena *a, void *node)
{
    memcpy((char *)node + NODE_LINK, &a->free, sizeof(void *));
    a->free = node;
}

static void arena_release(Arena *a)
{
    for (uint32_t i = 0; i < a->nchunks; i++) {
        PyMem_Free(a->chunks[i]);
    }
    PyMem_Free(a->chunks);
    a->chunks = NULL;
    a->nchunks = a->achunks = a->carved = 0;
    a->free = NULL;
}

/* -- the key table -------------------------------------------------------------------------- */

typedef struct {
    uint32_t tag; /* the top 32 bits of hash * GOLDEN: the home slot is its top ``bits`` bits */
    uint32_t ref; /* the node's arena index + 1; 0: empty */
} Slot;

typedef struct {
    Slot *slots;
    int bits;
    Py_ssize_t used;
} Table;

static inline uint32_t tag_of(uint64_t h) { return (uint32_t)((h * GOLDEN) >> 32); }

static inline Py_ssize_t home_of(uint32_t tag, const Table *t)
{
    return (Py_ssize_t)(tag >> (32 - t->bits));
}

static inline Py_ssize_t home(uint64_t h, const Table *t) { return home_of(tag_of(h), t); }

static int table_init(Table *t, int bits)
{
    Slot *s = PyMem_Calloc((size_t)1 << bits, sizeof(Slot));
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyMem_Free(t->slots);
    t->slots = s;
    t->bits = bits;
    t->used = 0;
    return 0;
}

static void table_put(Table *t, uint32_t tag, uint32_t ref)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home_of(tag, t);
    while (t->slots[i].ref != 0) {
        i = (i + 1) & mask;
    }
    t->slots[i].tag = tag;
    t->slots[i].ref = ref;
    t->used++;
}

static inline void table_place(Table *t, uint64_t h, void *n)
{
    table_put(t, tag_of(h), node_idx(n) + 1);
}

/* Make room for one more entry; -1 with MemoryError set. No Python code runs. why: at most a
   quarter full (see the arena's note); LIRS's ~4 x c + 16 nodes take 32 x c slots at c = 2,048
   (256 KiB, what the half-full table of 16-byte slots took). */
static int table_reserve(Table *t)
{
    if (4 * (t->used + 1) <= ((Py_ssize_t)1 << t->bits)) {
        return 0;
    }
    if (t->bits >= 30) { /* the tag holds 32 bits of home; 2**28 entries are never reached */
        PyErr_NoMemory();
        return -1;
    }
    Table bigger = {NULL, 0, 0};
    if (table_init(&bigger, t->bits + 1) < 0) {
        return -1;
    }
    Py_ssize_t size = (Py_ssize_t)1 << t->bits;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (t->slots[i].ref != 0) {
            table_put(&bigger, t->slots[i].tag, t->slots[i].ref);
        }
    }
    PyMem_Free(t->slots);
    *t = bigger;
    return 0;
}

static void table_remove(Table *t, void *n, uint64_t h)
{
    Slot *slots = t->slots;
    uint32_t ref = node_idx(n) + 1;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t);
    while (slots[i].ref != ref) {
        i = (i + 1) & mask;
    }
    Py_ssize_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (slots[j].ref == 0) {
            break;
        }
        Py_ssize_t k = home_of(slots[j].tag, t);
        /* slot j may move to i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            slots[i] = slots[j];
            i = j;
        }
    }
    slots[i].ref = 0;
    t->used--;
}

/* 1 if the node ``n`` (maybe given back to the arena: its index stays) is still in the table
   under ``h``. */
static int table_has(Table *t, uint64_t h, void *n)
{
    uint32_t ref = node_idx(n) + 1;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    for (Py_ssize_t i = home(h, t); t->slots[i].ref != 0; i = (i + 1) & mask) {
        if (t->slots[i].ref == ref) {
            return 1;
        }
    }
    return 0;
}

/* The node in slot ``i`` of the table, or NULL. */
static inline void *slot_node(const Table *t, const Arena *a, Py_ssize_t i)
{
    uint32_t ref = t->slots[i].ref;
    return ref ? arena_at(a, ref - 1) : NULL;
}

/* str.__eq__ of two exact strs (CPython's unicode_eq: canonical forms compare by kind, length
   and bytes); runs no Python code. */
static inline int str_eq(PyObject *a, PyObject *b)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(a);
    if (len != PyUnicode_GET_LENGTH(b) || PyUnicode_KIND(a) != PyUnicode_KIND(b)) {
        return 0;
    }
    return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)len * PyUnicode_KIND(a)) == 0;
}

/* Hash ``key`` and find its node, whose key object is ``key_of(node)`` and hash
   ``hash_of(node)``: 1 found (*out), 0 absent, -1 an exception (an unhashable key, or from ==).
   Inlined into each engine's find with its own key_of and hash_of, so the probe loop makes no
   indirect call. */
static inline int table_find_h(Table *t, const Arena *a, PyObject *key, uint64_t h, void **out,
                               PyObject *(*key_of)(void *node), uint64_t (*hash_of)(void *node));

static inline int table_find(Table *t, const Arena *a, PyObject *key, uint64_t *hp, void **out,
                             PyObject *(*key_of)(void *node), uint64_t (*hash_of)(void *node))
{
    /* why: a str's hash is a field once computed (the cache's dict has computed it); read it
       without PyObject_Hash's indirect call */
    Py_hash_t hh = PyUnicode_CheckExact(key) ? ((PyASCIIObject *)key)->hash : -1;
    if (hh == -1 && (hh = PyObject_Hash(key)) == -1) {
        return -1;
    }
    *hp = (uint64_t)hh;
    return table_find_h(t, a, key, (uint64_t)hh, out, key_of, hash_of);
}

/* table_find's probe for the key ``key`` of hash ``h`` (already computed). */
static inline int table_find_h(Table *t, const Arena *a, PyObject *key, uint64_t h, void **out,
                               PyObject *(*key_of)(void *node), uint64_t (*hash_of)(void *node))
{
    uint32_t tag = tag_of(h);
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    for (Py_ssize_t i = home_of(tag, t);; i = (i + 1) & mask) {
        uint32_t ref = t->slots[i].ref;
        if (ref == 0) {
            *out = NULL;
            return 0;
        }
        if (t->slots[i].tag != tag) {
            continue;
        }
        void *n = arena_at(a, ref - 1);
        if (hash_of(n) != h) {
            continue;
        }
        PyObject *k = key_of(n);
        if (k == key) {
            *out = n;
            return 1;
        }
        if (PyUnicode_CheckExact(k) && PyUnicode_CheckExact(key) && PyUnicode_IS_READY(k) &&
            PyUnicode_IS_READY(key)) {
            /* why: two exact strs compare as str.__eq__ does, without the call or the
               reference count writes into the stored key's (cold) object */
            if (str_eq(k, key)) {
                *out = n;
                return 1;
            }
            continue;
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
}

/* -- the engines' common part --------------------------------------------------------------- */

struct EngineOps;

/* The first member of ARC and LIRS: what both engines keep and the shared methods use. */
typedef struct {
    PyObject_HEAD
    const struct EngineOps *ops;
    Table keys; /* a node per key the engine knows (resident or history) */
    int64_t c;
    int64_t weight; /* the sum of the resident keys' weights */
    PyObject *buf;  /* the read buffer (a deque shared with AdaptivePolicy), strong; NULL after
                       the cycle collector's tp_clear */
    int busy;
    Arena arena; /* the nodes */
} Engine;

/* Called with each resident key (least valuable first) and its weight field; 0, or -1 with an
   exception (the walk stops). */
typedef int (*visit_fn)(void *ctx, PyObject *key, int64_t *weight);

/* The steps each engine supplies (``node``: its Node * or LNode *), run with ``busy`` set:
   find runs keys' __hash__ and __eq__; ARC's steps release the keys they drop at once (a
   __del__ that calls in is refused), LIRS's defer them to leave(). */
typedef struct EngineOps {
    const char *name; /* "ARCEngine" or "LIRSEngine", for messages */
    size_t node_size; /* sizeof(Node) or sizeof(LNode) */
    void (*init)(Engine *e); /* the empty lists, on a freshly allocated (zeroed) object */
    int (*find)(Engine *e, PyObject *key, uint64_t *h, void **node); /* as table_find */
    int (*resident)(void *node);
    int64_t *(*weight)(void *node);                   /* the node's weight field */
    int (*hit)(Engine *e, void *node, PyObject *key); /* a read of a resident key */
    /* make the non-resident ``key`` (its history node ``ghost``, or NULL) resident; victims into
       ``out`` (NULL: a simulation step, no weights) with their weights taken off; its node, or
       NULL with an exception */
    void *(*insert)(Engine *e, PyObject *key, uint64_t h, void *ghost, PyObject *out);
    void (*release)(Engine *e, PyObject *obj); /* drop a reference now or at leave() */
    void (*leave)(Engine *e);                  /* the end of a mutating call */
    /* forget a resident node: a key to release after leave(), or NULL */
    PyObject *(*remove)(Engine *e, void *node);
    void (*clear)(Engine *e);      /* clear(): forget every key (ARC also resets p) */
    void (*forget_all)(Engine *e); /* forget every key (a failed load()) */
    int (*resize)(Engine *e, int64_t c, PyObject *out); /* victims into ``out`` */
    int (*each_resident)(Engine *e, visit_fn fn, void *ctx);
    /* place the new key ``key`` (room reserved), the j-th of m loaded items, its weight set */
    int (*load_one)(Engine *e, PyObject *key, uint64_t h, int64_t weight, Py_ssize_t j,
                    Py_ssize_t m);
    /* make ``key`` (its history node ``ghost``, or NULL: room reserved) resident, weight 1, at
       the victim end */
    int (*prepend_one)(Engine *e, PyObject *key, uint64_t h, void *ghost);
    int (*copy_into)(Engine *src, Engine *dst); /* dst: empty, c and weight copied */
} EngineOps;

static void cleared_error(Engine *e)
{
    PyErr_Format(PyExc_RuntimeError, "%s: used after the garbage collector cleared it",
                 e->ops->name);
}

/* The start of every mutating call: -1 with RuntimeError when re-entered (from a key's __hash__
   or __eq__) or after the cycle collector's tp_clear; else busy until ops->leave(). */
static int engine_enter(Engine *e)
{
    if (e->busy) {
        PyErr_Format(PyExc_RuntimeError, "%s: re-entrant call (from a key's __hash__ or __eq__)",
                     e->ops->name);
        return -1;
    }
    if (e->buf == NULL) { /* reached from a __del__ after the cycle collector's tp_clear */
        cleared_error(e);
        return -1;
    }
    e->busy = 1;
    return 0;
}

/* The resident total after a key's weight goes from ``old`` to ``weight`` (``old`` 0 for a new
key, evictions not counted), or -1 with OverflowError when it leaves int64: checked before any
change, so a refused add() changes nothing. ``method`` names the call in the message. */
static int new_total(Engine *e, const char *method, int64_t old, int64_t weight, int64_t *out)
{
    int64_t total = e->weight;
    if (__builtin_sub_overflow(total, old, out) || __builtin_add_overflow(*out, weight, out)) {
        PyErr_Format(PyExc_OverflowError,
                     "%s.%s: the total weight would overflow int64 (total %lld, weight %lld)",
                     e->ops->name, method, (long long)total, (long long)weight);
        return -1;
    }
    return 0;
}

static int parse_weight(PyObject *w, int64_t *out)
{
    if (!PyLong_Check(w)) {
        PyErr_Format(PyExc_TypeError, "weight must be an int, got %R", w);
        return -1;
    }
    long long v = PyLong_AsLongLong(w);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int parse_capacity(const char *name, PyObject *v, int64_t *out)
{
    if (!PyLong_Check(v) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s: the capacity must be an int, got %R", name, v);
        return -1;
    }
    long long c = PyLong_AsLongLong(v);
    if (c == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (c < 0) {
        PyErr_Format(PyExc_ValueError, "%s: the capacity must be >= 0, got %R", name, v);
        return -1;
    }
    *out = (int64_t)c;
    return 0;
}

/* An owned tuple copy of a sequence argument: load() and prepend() run keys' __hash__ and __eq__,
 * which may mutate the caller's list, so they must never read its items through borrowed
 * pointers (PySequence_Fast_ITEMS of a list). ``what`` names the call and argument. */
static PyObject *owned_items(Engine *e, PyObject *obj, const char *what)
{
    char msg[96];
    PyOS_snprintf(msg, sizeof(msg), "%s.%s must be a sequence", e->ops->name, what);
    PyObject *seq = PySequence_Fast(obj, msg);
    if (seq == NULL) {
        return NULL;
    }
    PyObject *tup = PySequence_Tuple(seq);
    Py_DECREF(seq);
    return tup;
}

/* The read buffer for a copy: ``buf``, or a new deque for None. New reference, or NULL with an
   exception. */
static PyObject *new_buffer(PyObject *buf)
{
    if (buf == Py_None) {
        return PyObject_CallFunction(DequeType, "(()n)", (Py_ssize_t)READ_BUFFER);
    }
    if (!PyObject_TypeCheck(buf, (PyTypeObject *)DequeType)) {
        PyErr_Format(PyExc_TypeError, "buf must be a collections.deque or None, got %R", buf);
        return NULL;
    }
    Py_INCREF(buf);
    return buf;
}

/* Look each resident key up in the dict ``mapping`` (missing: 1), as AdaptivePolicy's adoption
   sets ``wt = {k: real.get(k, 1) for k, _w in order()}``. */
static int weight_of(PyObject *mapping, PyObject *key, int64_t *out)
{
    PyObject *w = PyDict_GetItemWithError(mapping, key);
    if (w == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        *out = 1;
        return 0;
    }
    Py_INCREF(w);
    int r = parse_weight(w, out);
    Py_DECREF(w);
    return r;
}

/* A new empty engine of ``type`` on the read buffer ``buf`` (a reference the call steals) with
   a table of 2**bits slots, or NULL with an exception. */
static Engine *engine_alloc(PyTypeObject *type, const EngineOps *ops, PyObject *buf, int bits)
{
    Engine *e = (Engine *)type->tp_alloc(type, 0);
    if (e == NULL) {
        Py_DECREF(buf);
        return NULL;
    }
    e->ops = ops;
    e->arena.size = ops->node_size;
    ops->init(e);
    e->buf = buf;
    if (table_init(&e->keys, bits) < 0) {
        Py_DECREF(e);
        return NULL;
    }
    return e;
}

/* ARCEngine(c, buf=None) / LIRSEngine(c, buf=None): an empty engine of capacity c. */
static Engine *engine_new(PyTypeObject *type, PyObject *args, PyObject *kwds,
                          const EngineOps *ops)
{
    static char *kwlist[] = {"c", "buf", NULL};
    char format[32];
    PyOS_snprintf(format, sizeof(format), "O|O:%s", ops->name);
    PyObject *cap, *buf = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, format, kwlist, &cap, &buf)) {
        return NULL;
    }
    int64_t c;
    if (parse_capacity(ops->name, cap, &c) < 0) {
        return NULL;
    }
    if (buf == Py_None) {
        buf = PyObject_CallFunction(DequeType, "(()n)", (Py_ssize_t)READ_BUFFER);
        if (buf == NULL) {
            return NULL;
        }
    }
    else {
        Py_INCREF(buf);
    }
    Engine *e = engine_alloc(type, ops, buf, 4);
    if (e != NULL) {
        e->c = c;
    }
    return e;
}

/* The end of tp_dealloc, after the type's tp_clear: the table, the arena, the object. */
static void engine_free(Engine *e)
{
    PyMem_Free(e->keys.slots);
    arena_release(&e->arena);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

/* -- the shared methods --------------------------------------------------------------------- */

/* Release a drain's snapshot: its list, or else its ``m`` references in ``small``. */
static void drop_reads(PyObject *list, PyObject **small, Py_ssize_t m)
{
    if (list != NULL) {
        Py_DECREF(list);
        return;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        Py_DECREF(small[j]);
    }
}

/* _drain: replay the buffered reads (hits only). 0, or -1 with an exception (the reads before
   it are replayed, the rest dropped: Python's list(buf); buf.clear() then a failing `in`). */
static int engine_drain(Engine *e)
{
    Py_ssize_t size = PyObject_Size(e->buf);
    if (size <= 0) {
        return (int)size;
    }
    PyObject *small[DRAIN_SMALL];
    PyObject *list = NULL, **items = small, *r;
    Py_ssize_t m = 0;
    if (size <= DRAIN_SMALL && Py_IS_TYPE(e->buf, (PyTypeObject *)DequeType)) {
        /* why: the few reads between two writes are held in a C array, not a new list (its
           allocation, GC tracking and iteration cost more than the replay of one read); a
           deque's item and clear() run no Python code, so this is still list(buf); clear() */
        for (; m < size; m++) {
            if ((small[m] = PySequence_GetItem(e->buf, m)) == NULL) {
                drop_reads(NULL, small, m);
                return -1;
            }
        }
        r = PyObject_CallOneArg(DEQUE_CLEAR, e->buf);
    }
    else {
        if ((list = PySequence_List(e->buf)) == NULL) {
            return -1;
        }
        items = ((PyListObject *)list)->ob_item; /* ours alone: no one resizes it */
        m = PyList_GET_SIZE(list);
        r = PyObject_CallMethodNoArgs(e->buf, STR_CLEAR);
    }
    if (r == NULL) {
        drop_reads(list, small, m);
        return -1;
    }
    Py_DECREF(r);
    const EngineOps *ops = e->ops;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *k = items[j];
        uint64_t h;
        void *n;
        int f = ops->find(e, k, &h, &n);
        if (f < 0 || (f && ops->resident(n) && ops->hit(e, n, k) < 0)) {
            drop_reads(list, small, m);
            return -1;
        }
    }
    if (list != NULL) {
        ops->release(e, list);
    }
    else {
        for (Py_ssize_t j = 0; j < m; j++) {
            ops->release(e, small[j]);
        }
    }
    return 0;
}

/* The hot paths, access(x) and add(key, weight), are inline functions that each type's method
   calls with its own ``ops``, a constant there: GCC folds ops->find, ops->insert, ... to direct
   calls and inlines the find with its table probe (an out-of-line find cost ~7% more
   instructions per access(), benchmarks/engines_c.py --instructions). */

/* add's body after the drain; ``simulate``: access(x), a simulation step that keeps no weights
(Python's access() leaves ``wt`` and ``weight`` alone; a new key shows weight 1 in order(), as
Python's wt.get(k, 1)). The new total is checked before any change: a refused add() changes
nothing. */
static inline PyObject *engine_step(Engine *e, PyObject *key, int64_t weight, int simulate,
                                    const EngineOps *ops)
{
    uint64_t h;
    void *n;
    int f = ops->find(e, key, &h, &n);
    if (f < 0) {
        return NULL;
    }
    int resident = f && ops->resident(n);
    int64_t total;
    if (!simulate &&
        new_total(e, "add", resident ? *ops->weight(n) : 0, weight, &total) < 0) {
        return NULL;
    }
    if (resident) {
        if (ops->hit(e, n, key) < 0) {
            return NULL;
        }
        if (simulate) {
            Py_RETURN_TRUE;
        }
        e->weight = total; /* new_total's sum: no int64 intermediate can overflow */
        *ops->weight(n) = weight;
        return PyList_New(0);
    }
    if (simulate) {
        void *x = ops->insert(e, key, h, f ? n : NULL, NULL);
        if (x == NULL) {
            return NULL;
        }
        *ops->weight(x) = 1;
        Py_RETURN_FALSE;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    void *x = ops->insert(e, key, h, f ? n : NULL, out);
    if (x == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    *ops->weight(x) = weight;
    e->weight += weight;
    return out;
}

static inline PyObject *engine_access(Engine *e, PyObject *key, const EngineOps *ops)
{
    if (engine_enter(e) < 0) {
        return NULL;
    }
    PyObject *r = engine_step(e, key, 1, 1, ops);
    ops->leave(e);
    return r;
}

/* A simulation step of the non-resident ``key`` (its history node ``ghost``, or NULL) with its
   victims appended to the list ``out``, run with ``busy`` set: 0, or -1 with an exception. As
   access(), it keeps no weights: insert's victims take their weights off the total, so the
   total is put back, and the new resident shows weight 1 (Python's take() leaves ``weight``
   and ``wt`` alone). */
static inline int sim_insert(Engine *e, PyObject *key, uint64_t h, void *ghost, PyObject *out,
                             const EngineOps *ops)
{
    int64_t total = e->weight;
    void *x = ops->insert(e, key, h, ghost, out);
    e->weight = total;
    if (x == NULL) {
        return -1;
    }
    *ops->weight(x) = 1;
    return 0;
}

/* take(x): access(x) that returns None on a hit, else a new list of the evicted keys in
   eviction order (Python's take()). why apart from access(): access() stays the one-branch
   simulation step it was, with no victims list to fill. */
static inline PyObject *engine_take(Engine *e, PyObject *key, const EngineOps *ops)
{
    if (engine_enter(e) < 0) {
        return NULL;
    }
    uint64_t h;
    void *n;
    PyObject *out = NULL;
    int f = ops->find(e, key, &h, &n);
    if (f > 0 && ops->resident(n)) {
        out = ops->hit(e, n, key) < 0 ? NULL : Py_NewRef(Py_None);
    }
    else if (f >= 0 && (out = PyList_New(0)) != NULL &&
             sim_insert(e, key, h, f ? n : NULL, out, ops) < 0) {
        Py_CLEAR(out);
    }
    ops->leave(e);
    return out;
}

static inline PyObject *engine_add(Engine *e, PyObject *const *args, Py_ssize_t nargs,
                                   const EngineOps *ops)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int64_t w;
    if (parse_weight(args[1], &w) < 0 || engine_enter(e) < 0) {
        return NULL;
    }
    PyObject *r = engine_drain(e) < 0 ? NULL : engine_step(e, args[0], w, 0, ops);
    ops->leave(e);
    return r;
}

static PyObject *engine_drain_method(Engine *e, PyObject *Py_UNUSED(ignored))
{
    if (engine_enter(e) < 0) {
        return NULL;
    }
    int r = engine_drain(e);
    e->ops->leave(e);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* remove()'s body, run with ``busy`` set: 0, or -1 with an exception; ``*dropped``: a key to
   release after leave(), or NULL. */
static int engine_remove_held(Engine *e, PyObject *key, PyObject **dropped)
{
    uint64_t h;
    void *n = NULL;
    *dropped = NULL;
    int f = engine_drain(e);
    if (f == 0) {
        f = e->ops->find(e, key, &h, &n);
    }
    if (f > 0 && e->ops->resident(n)) {
        *dropped = e->ops->remove(e, n);
    }
    return f < 0 ? -1 : 0;
}

static PyObject *engine_remove(Engine *e, PyObject *key)
{
    if (engine_enter(e) < 0) {
        return NULL;
    }
    PyObject *dropped;
    int f = engine_remove_held(e, key, &dropped);
    e->ops->leave(e);
    Py_XDECREF(dropped);
    if (f < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* clear()'s body, run with ``busy`` set: 0, or -1 with an exception. */
static int engine_clear_held(Engine *e)
{
    PyObject *r = PyObject_CallMethodNoArgs(e->buf, STR_CLEAR);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    e->ops->clear(e); /* runs no Python code before the engine is empty; busy until done */
    return 0;
}

static PyObject *engine_clear(Engine *e, PyObject *Py_UNUSED(ignored))
{
    if (engine_enter(e) < 0) {
        return NULL;
    }
    int r = engine_clear_held(e);
    e->ops->leave(e);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* resize()'s body, run with ``busy`` set: the evicted keys, or NULL with an exception. */
static PyObject *engine_resize_held(Engine *e, PyObject *max_entries, PyObject *max_weight)
{
    PyObject *out = NULL;
    int64_t c;
    if (engine_drain(e) < 0) {
        return NULL;
    }
    if (max_entries == Py_None || max_weight != Py_None) {
        PyErr_Format(PyExc_AssertionError,
                     "%s.resize: needs an entry bound and no weight bound, got %R, %R",
                     e->ops->name, max_entries, max_weight);
        return NULL;
    }
    if (parse_capacity(e->ops->name, max_entries, &c) < 0 || (out = PyList_New(0)) == NULL) {
        return NULL;
    }
    if (e->ops->resize(e, c, out) < 0) {
        Py_CLEAR(out);
    }
    return out;
}

static PyObject *engine_resize(Engine *e, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "resize() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (engine_enter(e) < 0) {
        return NULL;
    }
    PyObject *out = engine_resize_held(e, args[0], args[1]);
    e->ops->leave(e);
    return out;
}

static int append_pair(void *out, PyObject *key, int64_t *w)
{
    PyObject *t = Py_BuildValue("(OL)", key, (long long)*w);
    if (t == NULL) {
        return -1;
    }
    int r = PyList_Append((PyObject *)out, t);
    Py_DECREF(t);
    return r;
}

static PyObject *engine_order(Engine *e, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    /* busy across the walk: append_pair allocates, a collection it triggers may run a
     * finalizer, and a finalizer that called remove() would free nodes under the walk */
    int was_busy = e->busy;
    e->busy = 1;
    int r = e->ops->each_resident(e, append_pair, out);
    e->busy = was_busy;
    if (r < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *engine_load(Engine *e, PyObject *items)
{
    const char *name = e->ops->name;
    PyObject *seq = owned_items(e, items, "load: items");
    if (seq == NULL) {
        return NULL;
    }
    if (e->keys.used) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "%s.load: the engine must be empty, it knows %zd keys",
                     name, e->keys.used);
        return NULL;
    }
    if (engine_enter(e) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(seq);
    int ok = 0;
    PyObject *k = NULL, *w = NULL; /* strong: a key's __hash__/__eq__ may empty a list pair */
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *pair = PyTuple_GET_ITEM(seq, j);
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError, "%s.load: items must be (key, weight) pairs, got %R",
                         name, pair);
            goto done;
        }
        k = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 0));
        w = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 1));
        int64_t wv, total;
        uint64_t h;
        void *n;
        int f;
        if (parse_weight(w, &wv) < 0 || (f = e->ops->find(e, k, &h, &n)) < 0) {
            goto done;
        }
        if (f) {
            PyErr_Format(PyExc_ValueError, "%s.load: key %R appears twice", name, k);
            goto done;
        }
        if (new_total(e, "load", 0, wv, &total) < 0 || table_reserve(&e->keys) < 0 ||
            e->ops->load_one(e, k, h, wv, j, m) < 0) {
            goto done;
        }
        e->weight += wv;
        Py_CLEAR(k);
        Py_CLEAR(w);
    }
    ok = 1;
done:
    Py_XDECREF(k);
    Py_XDECREF(w);
    if (!ok) {
        e->ops->forget_all(e); /* an engine that was empty stays empty */
    }
    e->ops->leave(e);
    Py_DECREF(seq);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *engine_prepend(Engine *e, PyObject *keys)
{
    PyObject *seq = owned_items(e, keys, "prepend: keys");
    if (seq == NULL) {
        return NULL;
    }
    if (engine_enter(e) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(seq);
    int ok = 0;
    int64_t total; /* each key adds weight 1: refuse up front what could overflow */
    if (new_total(e, "prepend", 0, (int64_t)m, &total) < 0) {
        goto done;
    }
    for (Py_ssize_t j = m - 1; j >= 0; j--) {
        PyObject *k = PyTuple_GET_ITEM(seq, j); /* the owned tuple holds it */
        uint64_t h;
        void *n;
        int f = e->ops->find(e, k, &h, &n);
        if (f < 0) {
            goto done;
        }
        if (f && e->ops->resident(n)) {
            PyErr_Format(PyExc_ValueError, "%s.prepend: key %R is resident already",
                         e->ops->name, k);
            goto done;
        }
        if ((!f && table_reserve(&e->keys) < 0) || e->ops->prepend_one(e, k, h, n) < 0) {
            goto done;
        }
        e->weight += 1;
    }
    ok = 1;
done:
    e->ops->leave(e);
    Py_DECREF(seq);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *engine_copy(Engine *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "copy() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    PyObject *buf = new_buffer(nargs ? args[0] : Py_None);
    if (buf == NULL) {
        return NULL;
    }
    /* the same table size: the copy needs no table_reserve */
    Engine *o = engine_alloc(Py_TYPE(self), self->ops, buf, self->keys.bits);
    if (o == NULL) {
        return NULL;
    }
    o->c = self->c;
    o->weight = self->weight;
    if (self->ops->copy_into(self, o) < 0) {
        Py_DECREF(o); /* its forget_all releases what was copied so far */
        return NULL;
    }
    return (PyObject *)o;
}

typedef struct {
    Engine *e;
    PyObject *mapping;
    int64_t *ws;
    Py_ssize_t j;
    int64_t total;
} WeightPass;

static int count_one(void *ctx, PyObject *Py_UNUSED(key), int64_t *Py_UNUSED(w))
{
    (*(Py_ssize_t *)ctx)++;
    return 0;
}

static int read_weight(void *ctx, PyObject *key, int64_t *Py_UNUSED(w))
{
    WeightPass *p = ctx;
    if (weight_of(p->mapping, key, &p->ws[p->j]) < 0) {
        return -1;
    }
    if (__builtin_add_overflow(p->total, p->ws[p->j], &p->total)) {
        PyErr_Format(PyExc_OverflowError,
                     "%s.set_weights: the total weight overflows int64", p->e->ops->name);
        return -1;
    }
    p->j++;
    return 0;
}

static int write_weight(void *ctx, PyObject *Py_UNUSED(key), int64_t *w)
{
    WeightPass *p = ctx;
    *w = p->ws[p->j++];
    return 0;
}

static PyObject *engine_set_weights(Engine *e, PyObject *mapping)
{
    if (!PyDict_Check(mapping)) {
        PyErr_Format(PyExc_TypeError, "%s.set_weights: needs a dict, got %R", e->ops->name,
                     mapping);
        return NULL;
    }
    if (engine_enter(e) < 0) {
        return NULL;
    }
    /* read every new weight first, commit only when all are good: no half-set weights (the
       dict lookups run keys' __eq__, but busy keeps the residents as they are) */
    Py_ssize_t m = 0;
    e->ops->each_resident(e, count_one, &m);
    WeightPass p = {e, mapping, PyMem_Malloc((size_t)(m > 0 ? m : 1) * sizeof(int64_t)), 0, 0};
    if (p.ws == NULL) {
        e->ops->leave(e);
        return PyErr_NoMemory();
    }
    int ok = e->ops->each_resident(e, read_weight, &p) == 0;
    if (ok) {
        p.j = 0;
        e->ops->each_resident(e, write_weight, &p);
        e->weight = p.total;
    }
    PyMem_Free(p.ws);
    e->ops->leave(e);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ``key in engine``: a read, allowed inside a key's __eq__ during a call (busy stays set, so a
   key's __eq__ reached from here cannot mutate the engine either). */
static int engine_contains(Engine *e, PyObject *key)
{
    uint64_t h;
    void *n;
    int was_busy = e->busy;
    e->busy = 1;
    Py_INCREF(key);
    int f = e->ops->find(e, key, &h, &n);
    Py_DECREF(key);
    e->busy = was_busy;
    if (f <= 0) {
        return f;
    }
    return e->ops->resident(n);
}

/* A getter of the int64 field at byte offset ``field`` of the engine object. */
static PyObject *engine_get_int(PyObject *self, void *field)
{
    return PyLong_FromLongLong(*(int64_t *)((char *)self + (size_t)field));
}

static PyObject *engine_get_buf(Engine *e, void *Py_UNUSED(c))
{
    if (e->buf == NULL) { /* reached from a __del__ after the cycle collector's tp_clear */
        cleared_error(e);
        return NULL;
    }
    Py_INCREF(e->buf);
    return e->buf;
}

static int engine_set_buf(Engine *e, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL || !PyObject_TypeCheck(v, (PyTypeObject *)DequeType)) {
        PyErr_Format(PyExc_TypeError, "%s._buf must be a collections.deque, got %R",
                     e->ops->name, v == NULL ? Py_None : v);
        return -1;
    }
    if (e->busy) {
        PyErr_Format(PyExc_RuntimeError, "%s: re-entrant call", e->ops->name);
        return -1;
    }
    if (e->buf == NULL) { /* cleared by the cycle collector: the engine stays unusable */
        cleared_error(e);
        return -1;
    }
    Py_INCREF(v);
    Py_SETREF(e->buf, v);
    return 0;
}

/* An int64 field of the engine object of type T, read-only. */
#define INT_GETTER(name, T, field, doc)                                                          \
    {name, (getter)engine_get_int, NULL, doc, (void *)offsetof(T, field)}

/* The attributes both engines have (each type's table adds its own). */
#define ENGINE_GETSET                                                                            \
    INT_GETTER("weight", Engine, weight, "The sum of the resident keys' weights."),              \
        INT_GETTER("c", Engine, c, "The capacity in entries."),                                  \
        INT_GETTER("max_entries", Engine, c, "The capacity in entries (as c)."),                 \
        {"_buf", (getter)engine_get_buf, (setter)engine_set_buf, "The read buffer (a deque).",   \
         NULL}

/* The methods both engines have with the same docstring (each type's table adds remove, order,
   load, prepend and _lists with its own words); ``access``, ``take`` and ``add`` are the
   type's own wrappers of engine_access, engine_take and engine_add. */
#define ENGINE_METHODS(access, take, add)                                                        \
    {"access", (PyCFunction)access, METH_O,                                                      \
     "Simulate one read-or-insert of ``x``; return True on a hit."},                             \
        {"take", (PyCFunction)take, METH_O,                                                      \
         "Simulate one read-or-insert of ``x``; return None on a hit, else the evicted keys."},  \
        {"add", (PyCFunction)(void (*)(void))add, METH_FASTCALL,                                 \
         "Insert or touch ``key`` with ``weight``; return the evicted keys."},                   \
        {"update", (PyCFunction)(void (*)(void))add, METH_FASTCALL,                              \
         "As add(): record a new weight for ``key``; return the evicted keys."},                 \
        {"clear", (PyCFunction)engine_clear, METH_NOARGS,                                        \
         "Forget every key and the buffered reads."},                                            \
        {"resize", (PyCFunction)(void (*)(void))engine_resize, METH_FASTCALL,                    \
         "Change the capacity to ``max_entries``; return the evicted keys."},                    \
        {"_drain", (PyCFunction)engine_drain_method, METH_NOARGS, "Replay the buffered reads."}, \
        {"copy", (PyCFunction)(void (*)(void))engine_copy, METH_FASTCALL,                        \
         "Return a copy (the same key objects) on the read buffer ``buf`` (default: a new "      \
         "deque)."},                                                                             \
        {"set_weights", (PyCFunction)engine_set_weights, METH_O,                                 \
         "Set every resident key's weight to ``mapping.get(key, 1)`` (a dict)."}

/* -- ARC ------------------------------------------------------------------------------------ */

#define T1 0
#define T2 1
#define B1 2
#define B2 3

typedef struct Node {
    uint32_t idx; /* its arena index (first: see the arena) */
    int list;     /* T1, T2, B1 or B2 */
    struct Node *prev;
    struct Node *next;
    PyObject *key; /* strong */
    uint64_t hash;
    int64_t weight; /* residents only */
} Node;

typedef struct {
    Node head; /* sentinel: head.next is the LRU end, head.prev the MRU end */
    Py_ssize_t len;
} List;

typedef struct {
    Engine e;
    List lists[4];
    double p;
} ARC;

static void l_init(List *l)
{
    l->head.prev = l->head.next = &l->head;
    l->len = 0;
}

static inline void l_append(List *l, Node *n)
{
    n->prev = l->head.prev;
    n->next = &l->head;
    l->head.prev->next = n;
    l->head.prev = n;
    l->len++;
}

static inline void l_prepend(List *l, Node *n)
{
    n->next = l->head.next;
    n->prev = &l->head;
    l->head.next->prev = n;
    l->head.next = n;
    l->len++;
}

static inline void l_unlink(List *l, Node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    l->len--;
}

static inline Node *l_first(List *l) { return l->len ? l->head.next : NULL; }

/* Move ``n`` to the MRU end of list ``to`` (from wherever it is). */
static inline void move_to(ARC *self, Node *n, int to)
{
    l_unlink(&self->lists[n->list], n);
    n->list = to;
    l_append(&self->lists[to], n);
}

/* Replace the node's key object by ``key`` (Python's del + insert stores the argument). */
static inline void take_key(Node *n, PyObject *key)
{
    if (n->key != key) {
        PyObject *old = n->key;
        Py_INCREF(key);
        n->key = key;
        Py_DECREF(old);
    }
}

/* A new node for ``key`` at the MRU end of ``list`` (room reserved by the caller). */
static Node *node_new(ARC *self, PyObject *key, uint64_t h, int list)
{
    Node *n = arena_take(&self->e.arena);
    if (n == NULL) {
        return NULL;
    }
    Py_INCREF(key);
    n->key = key;
    n->hash = h;
    n->weight = 1;
    n->list = list;
    l_append(&self->lists[list], n);
    table_place(&self->e.keys, h, n);
    return n;
}

/* Forget the node entirely; return its key (a strong reference the caller releases). */
static PyObject *node_drop(ARC *self, Node *n)
{
    l_unlink(&self->lists[n->list], n);
    table_remove(&self->e.keys, n, n->hash);
    PyObject *key = n->key;
    arena_give(&self->e.arena, n);
    return key;
}

static void forget_all(ARC *self)
{
    /* unlink everything first: a key's __del__ may call in and must see an empty engine */
    Node *chain = NULL;
    for (int l = 0; l < 4; l++) {
        List *lst = &self->lists[l];
        while (lst->len) {
            Node *n = lst->head.next;
            l_unlink(lst, n);
            n->next = chain;
            chain = n;
        }
    }
    if (self->e.keys.slots != NULL) {
        memset(self->e.keys.slots, 0, ((size_t)1 << self->e.keys.bits) * sizeof(Slot));
    }
    self->e.keys.used = 0;
    self->e.weight = 0;
    while (chain != NULL) {
        Node *next = chain->next;
        PyObject *key = chain->key;
        arena_give(&self->e.arena, chain);
        Py_DECREF(key);
        chain = next;
    }
}

static inline Py_ssize_t n_res(ARC *self) { return self->lists[T1].len + self->lists[T2].len; }

/* _replace: demote T1's or T2's LRU key to its ghost list; return that node. */
static Node *replace(ARC *self, int in_b2)
{
    List *t1 = &self->lists[T1];
    Py_ssize_t n1 = t1->len;
    Node *n;
    if (n1 && ((double)n1 > self->p || (in_b2 && (double)n1 == self->p) ||
               self->lists[T2].len == 0)) {
        n = l_first(t1);
        move_to(self, n, B1);
    }
    else {
        n = l_first(&self->lists[T2]);
        move_to(self, n, B2);
    }
    return n;
}

/* Append a victim's key to ``out`` and take its weight off (``out`` NULL: a simulation step,
   which keeps no weights, as Python's access()). 0, or -1 with an exception. */
static int victim(ARC *self, Node *n, PyObject *out)
{
    if (out == NULL) {
        return 0;
    }
    self->e.weight -= n->weight;
    return PyList_Append(out, n->key);
}

/* _hit on a resident node. */
static inline void hit(ARC *self, Node *n, PyObject *key)
{
    if (n->list == T1) {
        move_to(self, n, T2);
        take_key(n, key);
    }
    else {
        move_to(self, n, T2);
    }
}

/* _insert of a key that is not resident (``n``: its ghost node or NULL). Victims (resident
   keys that leave) are appended to ``out`` with their weights taken off. Returns the node now
   holding the key, or NULL with an exception (nothing changed then). */
static Node *insert(ARC *self, PyObject *key, uint64_t h, Node *n, PyObject *out)
{
    List *t1 = &self->lists[T1], *t2 = &self->lists[T2];
    List *b1 = &self->lists[B1], *b2 = &self->lists[B2];
    int64_t c = self->e.c;
    int full = n_res(self) >= c;
    if (n != NULL && n->list == B1) {
        double delta = b1->len >= b2->len ? 1.0 : (double)b2->len / (double)b1->len;
        self->p = self->p + delta < (double)c ? self->p + delta : (double)c;
        if (full && victim(self, replace(self, 0), out) < 0) {
            return NULL;
        }
        move_to(self, n, T2);
        take_key(n, key);
        return n;
    }
    if (n != NULL) { /* in B2 */
        double delta = b2->len >= b1->len ? 1.0 : (double)b1->len / (double)b2->len;
        self->p = self->p - delta > 0.0 ? self->p - delta : 0.0;
        if (full && victim(self, replace(self, 1), out) < 0) {
            return NULL;
        }
        move_to(self, n, T2);
        take_key(n, key);
        return n;
    }
    int64_t l1 = (int64_t)(t1->len + b1->len);
    PyObject *dropped = NULL;
    if (l1 >= c) {
        if (t1->len < c && b1->len) {
            if (table_reserve(&self->e.keys) < 0) {
                return NULL;
            }
            dropped = node_drop(self, l_first(b1));
            if (full && victim(self, replace(self, 0), out) < 0) {
                Py_DECREF(dropped);
                return NULL;
            }
        }
        else {
            if (t1->len == 0) {
                PyErr_SetString(PyExc_KeyError, "dictionary is empty");
                return NULL;
            }
            if (table_reserve(&self->e.keys) < 0) {
                return NULL;
            }
            Node *v = l_first(t1);
            if (victim(self, v, out) < 0) {
                return NULL;
            }
            dropped = node_drop(self, v);
        }
    }
    else {
        if (table_reserve(&self->e.keys) < 0) {
            return NULL;
        }
        if (l1 + t2->len + b2->len >= c) {
            if (l1 + t2->len + b2->len >= 2 * c && b2->len) {
                dropped = node_drop(self, l_first(b2));
            }
            if (full && victim(self, replace(self, 0), out) < 0) {
                Py_XDECREF(dropped);
                return NULL;
            }
        }
    }
    Node *x = node_new(self, key, h, T1);
    Py_XDECREF(dropped);
    /* why: a stream of new keys drops B1's (or T1's) oldest node per insert, whose table slot
       and key object were last touched ~c inserts ago; the unlink above warmed the next one's
       node, so ask for its slot and key now, ahead of the next insert's drop */
    Node *next = l_first(b1->len ? b1 : t1);
    if (next != NULL) {
        __builtin_prefetch(&self->e.keys.slots[home(next->hash, &self->e.keys)], 1);
        __builtin_prefetch(next->key, 1);
    }
    return x;
}

/* -- ARC's steps for the shared methods ------------------------------------------------------ */

static void arc_init(Engine *e)
{
    for (int l = 0; l < 4; l++) {
        l_init(&((ARC *)e)->lists[l]);
    }
}

static PyObject *arc_key_of(void *n) { return ((Node *)n)->key; }

static uint64_t arc_hash_of(void *n) { return ((Node *)n)->hash; }

/* inline: the hot paths' folded ops->find inlines it, probe loop and all */
static inline int arc_find(Engine *e, PyObject *key, uint64_t *h, void **node)
{
    return table_find(&e->keys, &e->arena, key, h, node, arc_key_of, arc_hash_of);
}

static int arc_resident(void *node) { return ((Node *)node)->list <= T2; }

static int64_t *arc_weight(void *node) { return &((Node *)node)->weight; }

static void *arc_insert(Engine *e, PyObject *key, uint64_t h, void *ghost, PyObject *out)
{
    return insert((ARC *)e, key, h, ghost, out);
}

static int arc_hit(Engine *e, void *node, PyObject *key)
{
    hit((ARC *)e, node, key);
    return 0;
}

/* ARC releases a reference at once (busy still set: a __del__ calling in is refused). */
static void arc_release(Engine *Py_UNUSED(e), PyObject *obj) { Py_DECREF(obj); }

static void arc_leave(Engine *e) { e->busy = 0; }

/* the key is released after leave(): a __del__ may call in */
static PyObject *arc_remove(Engine *e, void *node)
{
    e->weight -= ((Node *)node)->weight;
    return node_drop((ARC *)e, node);
}

static void arc_clear(Engine *e)
{
    ((ARC *)e)->p = 0.0;
    forget_all((ARC *)e);
}

static void arc_forget_all(Engine *e) { forget_all((ARC *)e); }

static int arc_resize(Engine *e, int64_t c, PyObject *out)
{
    ARC *self = (ARC *)e;
    e->c = c;
    if ((double)c < self->p) {
        self->p = (double)c;
    }
    while (n_res(self) > c) {
        if (victim(self, replace(self, 0), out) < 0) {
            return -1;
        }
    }
    List *b1 = &self->lists[B1], *b2 = &self->lists[B2];
    while (b1->len + b2->len > c) {
        PyObject *k = node_drop(self, l_first(b1->len >= b2->len ? b1 : b2));
        Py_DECREF(k); /* the structure is consistent: a __del__ that calls in sees it */
    }
    return 0;
}

/* T1, then T2, each LRU first */
static int arc_each_resident(Engine *e, visit_fn fn, void *ctx)
{
    ARC *self = (ARC *)e;
    for (int l = T1; l <= T2; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != &lst->head; n = n->next) {
            if (fn(ctx, n->key, &n->weight) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* loaded keys go to T2 */
static int arc_load_one(Engine *e, PyObject *key, uint64_t h, int64_t weight,
                        Py_ssize_t Py_UNUSED(j), Py_ssize_t Py_UNUSED(m))
{
    Node *n = node_new((ARC *)e, key, h, T2);
    if (n == NULL) {
        return -1;
    }
    n->weight = weight;
    return 0;
}

/* prepended keys go to T1's LRU end */
static int arc_prepend_one(Engine *e, PyObject *key, uint64_t h, void *ghost)
{
    ARC *self = (ARC *)e;
    Node *n = ghost;
    if (n != NULL) {
        l_unlink(&self->lists[n->list], n);
        n->list = T1;
        l_prepend(&self->lists[T1], n);
        take_key(n, key);
    }
    else {
        if ((n = node_new(self, key, h, T1)) == NULL) {
            return -1;
        }
        l_unlink(&self->lists[T1], n);
        l_prepend(&self->lists[T1], n);
    }
    n->weight = 1;
    return 0;
}

static int arc_copy_into(Engine *src, Engine *dst)
{
    ARC *self = (ARC *)src, *o = (ARC *)dst;
    o->p = self->p;
    for (int l = 0; l < 4; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != &lst->head; n = n->next) {
            Node *m = node_new(o, n->key, n->hash, l); /* the same bits: room for all */
            if (m == NULL) {
                return -1;
            }
            m->weight = n->weight;
        }
    }
    return 0;
}

static const EngineOps ARC_ops = {
    .name = "ARCEngine",
    .node_size = sizeof(Node),
    .init = arc_init,
    .find = arc_find,
    .resident = arc_resident,
    .weight = arc_weight,
    .hit = arc_hit,
    .insert = arc_insert,
    .release = arc_release,
    .leave = arc_leave,
    .remove = arc_remove,
    .clear = arc_clear,
    .forget_all = arc_forget_all,
    .resize = arc_resize,
    .each_resident = arc_each_resident,
    .load_one = arc_load_one,
    .prepend_one = arc_prepend_one,
    .copy_into = arc_copy_into,
};

/* -- ARC's type ----------------------------------------------------------------------------- */

static PyObject *ARC_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return (PyObject *)engine_new(type, args, kwds, &ARC_ops);
}

static PyObject *ARC_access(PyObject *self, PyObject *key)
{
    return engine_access((Engine *)self, key, &ARC_ops);
}

static PyObject *ARC_take(PyObject *self, PyObject *key)
{
    return engine_take((Engine *)self, key, &ARC_ops);
}

static PyObject *ARC_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return engine_add((Engine *)self, args, nargs, &ARC_ops);
}

static PyObject *ARC_lists(ARC *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyTuple_New(4);
    if (out == NULL) {
        return NULL;
    }
    /* busy across the walk, as engine_order: a finalizer run by a collection must not mutate */
    int was_busy = self->e.busy;
    self->e.busy = 1;
    for (int l = 0; l < 4; l++) {
        List *lst = &self->lists[l];
        PyObject *keys = PyList_New(lst->len);
        if (keys == NULL) {
            self->e.busy = was_busy;
            Py_DECREF(out);
            return NULL;
        }
        Py_ssize_t j = 0;
        for (Node *n = lst->head.next; n != &lst->head; n = n->next) {
            Py_INCREF(n->key);
            PyList_SET_ITEM(keys, j++, n->key);
        }
        PyTuple_SET_ITEM(out, l, keys);
    }
    self->e.busy = was_busy;
    return out;
}

static int ARC_traverse(ARC *self, visitproc visit, void *arg)
{
    for (int l = 0; l < 4; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != NULL && n != &lst->head; n = n->next) {
            Py_VISIT(n->key);
        }
    }
    Py_VISIT(self->e.buf);
    return 0;
}

static int ARC_tp_clear(ARC *self)
{
    if (self->lists[0].head.next != NULL) {
        forget_all(self);
    }
    Py_CLEAR(self->e.buf);
    return 0;
}

static void ARC_dealloc(ARC *self)
{
    PyObject_GC_UnTrack(self);
    ARC_tp_clear(self);
    engine_free(&self->e);
}

static Py_ssize_t ARC_len(ARC *self) { return n_res(self); }

static PyObject *ARC_get_p(ARC *self, void *Py_UNUSED(c)) { return PyFloat_FromDouble(self->p); }

static int ARC_set_p(ARC *self, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "ARCEngine.p cannot be deleted");
        return -1;
    }
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(d >= 0.0 && d <= (double)self->e.c)) {
        PyErr_Format(PyExc_ValueError, "ARCEngine.p must be in [0, c=%lld], got %R",
                     (long long)self->e.c, v);
        return -1;
    }
    self->p = d;
    return 0;
}

static PyGetSetDef ARC_getset[] = {
    ENGINE_GETSET,
    {"p", (getter)ARC_get_p, (setter)ARC_set_p, "ARC's target size of T1 (a float in [0, c]).",
     NULL},
    {NULL},
};

static PyMethodDef ARC_methods[] = {
    ENGINE_METHODS(ARC_access, ARC_take, ARC_add),
    {"remove", (PyCFunction)engine_remove, METH_O, "Forget the resident ``key`` (ghosts stay)."},
    {"order", (PyCFunction)engine_order, METH_NOARGS,
     "Return the resident (key, weight) pairs, least valuable first (T1, then T2)."},
    {"load", (PyCFunction)engine_load, METH_O,
     "Fill an empty engine with (key, weight) items (least valuable first) into T2."},
    {"prepend", (PyCFunction)engine_prepend, METH_O,
     "Make ``keys`` (least valuable first) resident at T1's LRU end, weight 1."},
    {"_lists", (PyCFunction)ARC_lists, METH_NOARGS,
     "Return the keys of T1, T2, B1 and B2, each LRU first (for tests)."},
    {NULL},
};

static PySequenceMethods ARC_as_sequence = {
    .sq_length = (lenfunc)ARC_len,
    .sq_contains = (objobjproc)engine_contains,
};

static PyTypeObject ARCType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perflayer.cache._engines_c.ARCEngine",
    .tp_doc = "ARC over entries in C, decision-identical to _policy_adaptive._ARCEngine.",
    .tp_basicsize = sizeof(ARC),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = ARC_new,
    .tp_dealloc = (destructor)ARC_dealloc,
    .tp_traverse = (traverseproc)ARC_traverse,
    .tp_clear = (inquiry)ARC_tp_clear,
    .tp_methods = ARC_methods,
    .tp_getset = ARC_getset,
    .tp_as_sequence = &ARC_as_sequence,
};

/* -- LIRS ----------------------------------------------------------------------------------- */

/* LIRSEngine, the twin of _LIRSEngine (Jiang and Zhang, SIGMETRICS 2002). A node per key in
   Python's ``state`` dict, threaded on the stack ``s`` (s-links) and on at most one of the
   resident-HIR queue ``q`` and the non-resident history ``nonres`` (o-links). Python keeps a key
   object per OrderedDict, so a node keeps two: ``skey`` (the stack's; NULL off the stack) and
   ``okey`` (q's or nonres's; NULL in neither), each set where Python inserts the argument and
   kept where Python moves an entry, so order() and the victims are the very objects Python's
   would return. Keys that leave are released only at the end of the call (``dead``), so no
   Python code (a __del__) runs while the lists are being relinked. */

#define LIR 0
#define HIR 1
#define NONRES 2
#define OQ 1
#define ONR 2
#define NONRES_FACTOR 3
#define NONRES_MIN 1024

typedef struct LNode {
    uint32_t idx;  /* its arena index (first: see the arena) */
    uint8_t state; /* LIR, HIR or NONRES */
    uint8_t olist; /* 0, OQ or ONR */
    struct LNode *sprev;
    struct LNode *snext;
    struct LNode *oprev;
    struct LNode *onext;
    PyObject *skey; /* strong; NULL: not on the stack */
    PyObject *okey; /* strong; NULL: in neither q nor nonres */
    uint64_t hash;
    int64_t weight;
} LNode;

typedef struct {
    LNode head;
    Py_ssize_t len;
} LList;

typedef struct {
    Engine e;
    LList s;  /* the LIRS stack: head.snext is the bottom, head.sprev the top */
    LList q;  /* resident HIR keys: head.onext is the victim */
    LList nr; /* non-resident keys, oldest first */
    LNode *pf; /* a hint only, never followed for a decision: how far the walk ahead of the
                  next history trim has come (NULL: from the oldest) */
    int64_t l_hirs;
    int64_t l_lirs;
    int64_t n_lir;
    int64_t n_res;
    PyObject **dead;
    Py_ssize_t ndead;
    Py_ssize_t adead;
} LIRS;

/* Release ``obj`` at the end of the call (at once if there is no memory to remember it). */
static void defer(LIRS *self, PyObject *obj)
{
    if (self->ndead == self->adead) {
        Py_ssize_t a = self->adead ? 2 * self->adead : 16;
        PyObject **d = PyMem_Realloc(self->dead, (size_t)a * sizeof(PyObject *));
        if (d == NULL) {
            Py_DECREF(obj);
            return;
        }
        self->dead = d;
        self->adead = a;
    }
    self->dead[self->ndead++] = obj;
}

/* Release the deferred keys (the engine is consistent: a __del__ may call in). */
static void flush(LIRS *self)
{
    while (self->ndead) {
        PyObject *obj = self->dead[--self->ndead];
        Py_DECREF(obj);
    }
}

static void ll_init(LList *l)
{
    l->head.sprev = l->head.snext = &l->head;
    l->head.oprev = l->head.onext = &l->head;
    l->len = 0;
}

/* the stack */
static inline void s_link_end(LIRS *self, LNode *n)
{
    LNode *h = &self->s.head;
    n->sprev = h->sprev;
    n->snext = h;
    h->sprev->snext = n;
    h->sprev = n;
    self->s.len++;
}

static inline void s_link_out(LIRS *self, LNode *n)
{
    n->sprev->snext = n->snext;
    n->snext->sprev = n->sprev;
    self->s.len--;
}

/* s[key] = None for a node off the stack (the argument becomes the stack's key object) */
static inline void s_append(LIRS *self, LNode *n, PyObject *key)
{
    Py_INCREF(key);
    n->skey = key;
    s_link_end(self, n);
}

static inline void s_move_to_end(LIRS *self, LNode *n)
{
    s_link_out(self, n);
    s_link_end(self, n);
}

static inline void s_remove(LIRS *self, LNode *n)
{
    s_link_out(self, n);
    defer(self, n->skey);
    n->skey = NULL;
}

static inline LNode *s_first(LIRS *self) { return self->s.len ? self->s.head.snext : NULL; }

/* q and nonres */
static inline LList *o_list(LIRS *self, int which) { return which == OQ ? &self->q : &self->nr; }

static inline void o_link_end(LList *l, LNode *n)
{
    LNode *h = &l->head;
    n->oprev = h->oprev;
    n->onext = h;
    h->oprev->onext = n;
    h->oprev = n;
    l->len++;
}

static inline void o_link_front(LList *l, LNode *n)
{
    LNode *h = &l->head;
    n->onext = h->onext;
    n->oprev = h;
    h->onext->oprev = n;
    h->onext = n;
    l->len++;
}

static inline void o_link_out(LList *l, LNode *n)
{
    n->oprev->onext = n->onext;
    n->onext->oprev = n->oprev;
    l->len--;
}

/* Append ``n`` (in neither list) to ``which`` with ``key``, a reference the call steals. */
static inline void o_append_steal(LIRS *self, LNode *n, int which, PyObject *key)
{
    n->okey = key;
    n->olist = which;
    o_link_end(o_list(self, which), n);
}

static inline void o_remove(LIRS *self, LNode *n)
{
    o_link_out(o_list(self, n->olist), n);
    n->olist = 0;
    defer(self, n->okey);
    n->okey = NULL;
}

static inline LNode *o_first(LList *l) { return l->len ? l->head.onext : NULL; }

/* A new node (room reserved by the caller), in the table, in no list. */
static LNode *lnode_new(LIRS *self, uint64_t h)
{
    LNode *n = arena_take(&self->e.arena);
    if (n == NULL) {
        return NULL;
    }
    n->skey = n->okey = NULL;
    n->hash = h;
    n->weight = 1;
    n->state = HIR;
    n->olist = 0;
    table_place(&self->e.keys, h, n);
    return n;
}

/* Forget the node: off every list, out of the table, its keys released at the end. */
static void lnode_drop(LIRS *self, LNode *n)
{
    if (n->skey != NULL) {
        s_remove(self, n);
    }
    if (n->olist) {
        o_remove(self, n);
    }
    table_remove(&self->e.keys, n, n->hash);
    arena_give(&self->e.arena, n);
}

static void lirs_size(LIRS *self, int64_t c)
{
    self->e.c = c;
    self->l_hirs = c > 1 ? (int64_t)((double)c * 0.01) : 0;
    if (c > 1 && self->l_hirs < 1) {
        self->l_hirs = 1;
    }
    self->l_lirs = c - self->l_hirs;
}

static void lprune(LIRS *self)
{
    LNode *n;
    while ((n = s_first(self)) != NULL) {
        if (n->state == LIR) {
            return;
        }
        s_remove(self, n);
        if (n->state == NONRES) {
            lnode_drop(self, n);
        }
    }
}

static int demote_bottom_lir(LIRS *self)
{
    lprune(self);
    LNode *n = s_first(self);
    if (n == NULL) {
        PyErr_SetString(PyExc_KeyError, "dictionary is empty");
        return -1;
    }
    PyObject *k = n->skey;
    Py_INCREF(k);
    s_remove(self, n);
    n->state = HIR;
    o_append_steal(self, n, OQ, k);
    self->n_lir--;
    lprune(self);
    return 0;
}

/* _evict_hir; the victim's key is appended to ``out`` with its weight taken off (``out`` NULL:
   a simulation step). 0, or -1 with an exception. */
static int evict_hir(LIRS *self, PyObject *out)
{
    LNode *n = o_first(&self->q);
    if (n == NULL) {
        PyErr_SetString(PyExc_KeyError, "dictionary is empty");
        return -1;
    }
    if (out != NULL) {
        if (PyList_Append(out, n->okey) < 0) {
            return -1;
        }
        self->e.weight -= n->weight;
    }
    if (n->skey != NULL) {
        o_link_out(&self->q, n);
        n->state = NONRES;
        n->olist = ONR;
        o_link_end(&self->nr, n);
    }
    else {
        lnode_drop(self, n);
    }
    self->n_res--;
    return 0;
}

static int lhit(LIRS *self, LNode *n, PyObject *key)
{
    if (n->state == LIR) {
        s_move_to_end(self, n);
        lprune(self);
    }
    else if (n->skey != NULL) {
        s_move_to_end(self, n);
        o_remove(self, n);
        n->state = LIR;
        self->n_lir++;
        if (self->n_lir > self->l_lirs) {
            return demote_bottom_lir(self);
        }
        lprune(self);
    }
    else {
        s_append(self, n, key);
        o_link_out(&self->q, n);
        o_link_end(&self->q, n);
    }
    return 0;
}

/* _insert of the non-resident ``key`` (``n``: its NONRES node, or NULL). Returns its node, or
   NULL with an exception. */
static LNode *linsert(LIRS *self, PyObject *key, uint64_t h, LNode *n, PyObject *out)
{
    if (table_reserve(&self->e.keys) < 0) {
        return NULL;
    }
    if (self->n_lir < self->l_lirs && (self->n_res < self->e.c || self->q.len)) {
        if (self->n_res >= self->e.c && evict_hir(self, out) < 0) {
            return NULL;
        }
        if (n != NULL) {
            o_remove(self, n);
        }
        else if ((n = lnode_new(self, h)) == NULL) {
            return NULL;
        }
        n->state = LIR;
        if (n->skey == NULL) {
            s_append(self, n, key);
        }
        else {
            s_move_to_end(self, n);
        }
        self->n_lir++;
        self->n_res++;
        return n;
    }
    while (self->n_res >= self->e.c && self->n_res > 0) {
        if (self->q.len == 0 && demote_bottom_lir(self) < 0) {
            return NULL;
        }
        if (evict_hir(self, out) < 0) {
            return NULL;
        }
    }
    self->n_res++;
    if (n != NULL && !table_has(&self->e.keys, h, n)) {
        /* the evictions above pruned the key's own history off the stack: it arrives as new */
        n = NULL;
    }
    if (n != NULL) {
        o_remove(self, n);
        s_move_to_end(self, n);
        n->state = LIR;
        self->n_lir++;
        if (demote_bottom_lir(self) < 0) {
            return NULL;
        }
    }
    else {
        if ((n = lnode_new(self, h)) == NULL) {
            return NULL;
        }
        n->state = HIR;
        s_append(self, n, key);
        Py_INCREF(key);
        o_append_steal(self, n, OQ, key);
    }
    int64_t lim = NONRES_FACTOR * self->e.c > NONRES_MIN ? NONRES_FACTOR * self->e.c : NONRES_MIN;
    if (self->nr.len > lim + 16) {
        /* bound the history: forget the oldest non-resident keys */
        int64_t m = self->nr.len - lim;
        /* why: the 17 or so nodes, their table slots and key objects were last touched
           thousands of accesses ago: walk the nodes first and ask for the rest, so the slots'
           and keys' cache misses overlap instead of coming one by one in the drops */
        Table *t = &self->e.keys;
        LNode *p = o_first(&self->nr);
        for (int64_t j = 0; j < m; j++, p = p->onext) {
            __builtin_prefetch(&t->slots[home(p->hash, t)], 1);
            __builtin_prefetch(p->okey, 1);
            __builtin_prefetch(p->sprev, 1);
        }
        for (int64_t j = m; j > 0; j--) {
            lnode_drop(self, o_first(&self->nr));
        }
        self->pf = NULL;
    }
    else if (self->nr.len > lim) {
        /* why: that trim comes within 16 inserts, and its walk of the oldest nodes is one
           dependent cache miss per node (half of this function's time in a whole cache). Walk
           ahead one node per insert instead, asking for the next node, its slot and its key, so
           the trim finds them warm. The cursor is a hint: its node is only read (arena memory,
           valid while the engine lives), and one that left the history restarts the walk. */
        LNode *p = self->pf;
        p = (p == NULL || p->olist != ONR) ? o_first(&self->nr) : p->onext;
        if (p != NULL && p != &self->nr.head) {
            Table *t = &self->e.keys;
            /* (a node is 72 bytes: the fields the walk reads, onext and hash, may lie on the
               line after its first) */
            __builtin_prefetch(&p->onext->onext, 0);
            __builtin_prefetch(&p->onext->hash, 0);
            __builtin_prefetch(&t->slots[home(p->hash, t)], 1);
            __builtin_prefetch(p->okey, 1);
            __builtin_prefetch(p->sprev, 1);
            self->pf = p;
        }
        else {
            self->pf = NULL;
        }
    }
    return n;
}

static void lforget_all(LIRS *self)
{
    Table *t = &self->e.keys;
    Py_ssize_t size = t->slots != NULL ? (Py_ssize_t)1 << t->bits : 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        LNode *n = slot_node(t, &self->e.arena, i);
        if (n == NULL) {
            continue;
        }
        t->slots[i].ref = 0;
        if (n->skey != NULL) {
            defer(self, n->skey);
        }
        if (n->okey != NULL) {
            defer(self, n->okey);
        }
        arena_give(&self->e.arena, n);
    }
    t->used = 0;
    ll_init(&self->s);
    ll_init(&self->q);
    ll_init(&self->nr);
    self->pf = NULL;
    self->n_lir = self->n_res = self->e.weight = 0;
}

/* -- LIRS's steps for the shared methods ----------------------------------------------------- */

static void lirs_init(Engine *e)
{
    LIRS *self = (LIRS *)e;
    ll_init(&self->s);
    ll_init(&self->q);
    ll_init(&self->nr);
    self->pf = NULL;
}

static PyObject *lirs_key_of(void *node)
{
    LNode *n = node;
    return n->skey != NULL ? n->skey : n->okey;
}

static uint64_t lirs_hash_of(void *n) { return ((LNode *)n)->hash; }

/* inline, as arc_find */
static inline int lirs_find(Engine *e, PyObject *key, uint64_t *h, void **node)
{
    return table_find(&e->keys, &e->arena, key, h, node, lirs_key_of, lirs_hash_of);
}

static int lirs_resident(void *node) { return ((LNode *)node)->state != NONRES; }

static int64_t *lirs_weight(void *node) { return &((LNode *)node)->weight; }

static void *lirs_insert(Engine *e, PyObject *key, uint64_t h, void *ghost, PyObject *out)
{
    return linsert((LIRS *)e, key, h, ghost, out);
}

static int lirs_hit(Engine *e, void *node, PyObject *key) { return lhit((LIRS *)e, node, key); }

/* LIRS releases references at the end of the call (leave), when the lists are relinked. */
static void lirs_release(Engine *e, PyObject *obj) { defer((LIRS *)e, obj); }

static void lirs_leave(Engine *e)
{
    e->busy = 0;
    flush((LIRS *)e);
}

static PyObject *lirs_remove(Engine *e, void *node)
{
    LIRS *self = (LIRS *)e;
    LNode *n = node;
    e->weight -= n->weight;
    if (n->state == LIR) {
        self->n_lir--;
    }
    lnode_drop(self, n);
    self->n_res--;
    lprune(self);
    return NULL; /* its keys are deferred */
}

static void lirs_forget_all(Engine *e) { lforget_all((LIRS *)e); }

static int lirs_resize(Engine *e, int64_t c, PyObject *out)
{
    LIRS *self = (LIRS *)e;
    lirs_size(self, c);
    while (self->n_lir > self->l_lirs) {
        if (demote_bottom_lir(self) < 0) {
            return -1;
        }
    }
    while (self->n_res > e->c) {
        if ((self->q.len == 0 && demote_bottom_lir(self) < 0) || evict_hir(self, out) < 0) {
            return -1;
        }
    }
    return 0;
}

/* the HIR queue (victim first), then the LIR keys from the stack's bottom up */
static int lirs_each_resident(Engine *e, visit_fn fn, void *ctx)
{
    LIRS *self = (LIRS *)e;
    for (LNode *n = self->q.head.onext; n != &self->q.head; n = n->onext) {
        if (fn(ctx, n->okey, &n->weight) < 0) {
            return -1;
        }
    }
    for (LNode *n = self->s.head.snext; n != &self->s.head; n = n->snext) {
        if (n->state == LIR && fn(ctx, n->skey, &n->weight) < 0) {
            return -1;
        }
    }
    return 0;
}

/* the m - l_lirs least valuable items are HIR (in q), the rest LIR (on the stack) */
static int lirs_load_one(Engine *e, PyObject *key, uint64_t h, int64_t weight, Py_ssize_t j,
                         Py_ssize_t m)
{
    LIRS *self = (LIRS *)e;
    int64_t n_hir = m - self->l_lirs > 0 ? m - self->l_lirs : 0;
    LNode *n = lnode_new(self, h);
    if (n == NULL) {
        return -1;
    }
    n->weight = weight;
    self->n_res++;
    if (j < n_hir) {
        n->state = HIR;
        Py_INCREF(key);
        o_append_steal(self, n, OQ, key);
    }
    else {
        n->state = LIR;
        s_append(self, n, key);
        self->n_lir++;
    }
    return 0;
}

/* prepended keys are HIR at q's victim end */
static int lirs_prepend_one(Engine *e, PyObject *key, uint64_t h, void *ghost)
{
    LIRS *self = (LIRS *)e;
    LNode *n = ghost;
    if (n != NULL) {
        /* out of the stack, a hit does not make it LIR over the simulated LIR keys */
        o_remove(self, n);
        s_remove(self, n);
    }
    else if ((n = lnode_new(self, h)) == NULL) {
        return -1;
    }
    n->state = HIR;
    Py_INCREF(key);
    n->okey = key;
    n->olist = OQ;
    o_link_front(&self->q, n);
    n->weight = 1;
    self->n_res++;
    return 0;
}

/* The copy's node of the source's node ``n``: the same slot index (the tables are identical). */
static LNode *twin_of(Engine *src, Engine *dst, LNode *n)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << src->keys.bits) - 1;
    uint32_t ref = n->idx + 1;
    Py_ssize_t i = home(n->hash, &src->keys);
    while (src->keys.slots[i].ref != ref) {
        i = (i + 1) & mask;
    }
    return slot_node(&dst->keys, &dst->arena, i);
}

static int lirs_copy_into(Engine *src, Engine *dst)
{
    LIRS *self = (LIRS *)src, *o = (LIRS *)dst;
    Py_ssize_t size = (Py_ssize_t)1 << src->keys.bits;
    for (Py_ssize_t i = 0; i < size; i++) {
        LNode *n = slot_node(&src->keys, &src->arena, i);
        if (n == NULL) {
            continue;
        }
        LNode *m = arena_take(&dst->arena);
        if (m == NULL) {
            return -1; /* lforget_all gives back the nodes placed so far */
        }
        uint32_t idx = m->idx;
        *m = *n;
        m->idx = idx;
        Py_XINCREF(m->skey);
        Py_XINCREF(m->okey);
        dst->keys.slots[i].tag = src->keys.slots[i].tag;
        dst->keys.slots[i].ref = idx + 1;
        dst->keys.used++;
    }
    for (LNode *n = self->s.head.snext; n != &self->s.head; n = n->snext) {
        s_link_end(o, twin_of(src, dst, n));
    }
    for (LNode *n = self->q.head.onext; n != &self->q.head; n = n->onext) {
        o_link_end(&o->q, twin_of(src, dst, n));
    }
    for (LNode *n = self->nr.head.onext; n != &self->nr.head; n = n->onext) {
        o_link_end(&o->nr, twin_of(src, dst, n));
    }
    o->l_hirs = self->l_hirs;
    o->l_lirs = self->l_lirs;
    o->n_lir = self->n_lir;
    o->n_res = self->n_res;
    return 0;
}

static const EngineOps LIRS_ops = {
    .name = "LIRSEngine",
    .node_size = sizeof(LNode),
    .init = lirs_init,
    .find = lirs_find,
    .resident = lirs_resident,
    .weight = lirs_weight,
    .hit = lirs_hit,
    .insert = lirs_insert,
    .release = lirs_release,
    .leave = lirs_leave,
    .remove = lirs_remove,
    .clear = lirs_forget_all,
    .forget_all = lirs_forget_all,
    .resize = lirs_resize,
    .each_resident = lirs_each_resident,
    .load_one = lirs_load_one,
    .prepend_one = lirs_prepend_one,
    .copy_into = lirs_copy_into,
};

/* -- LIRS's type ---------------------------------------------------------------------------- */

static PyObject *LIRS_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Engine *e = engine_new(type, args, kwds, &LIRS_ops);
    if (e != NULL) {
        lirs_size((LIRS *)e, e->c);
    }
    return (PyObject *)e;
}

static PyObject *LIRS_access(PyObject *self, PyObject *key)
{
    return engine_access((Engine *)self, key, &LIRS_ops);
}

static PyObject *LIRS_take(PyObject *self, PyObject *key)
{
    return engine_take((Engine *)self, key, &LIRS_ops);
}

static PyObject *LIRS_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return engine_add((Engine *)self, args, nargs, &LIRS_ops);
}

static PyObject *LIRS_lists(LIRS *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *s = PyList_New(0), *q = PyList_New(0), *nr = PyList_New(0), *st = PyDict_New();
    PyObject *pairs = NULL;
    /* busy across the walks, as engine_order (the appends allocate: a collection's finalizer
     * must not mutate); not across the dict's fill below, which runs keys' __hash__ */
    int was_busy = self->e.busy;
    self->e.busy = 1;
    if (s == NULL || q == NULL || nr == NULL || st == NULL) {
        goto fail;
    }
    for (LNode *n = self->s.head.snext; n != &self->s.head; n = n->snext) {
        if (PyList_Append(s, n->skey) < 0) {
            goto fail;
        }
    }
    for (LNode *n = self->q.head.onext; n != &self->q.head; n = n->onext) {
        if (PyList_Append(q, n->okey) < 0) {
            goto fail;
        }
    }
    for (LNode *n = self->nr.head.onext; n != &self->nr.head; n = n->onext) {
        if (PyList_Append(nr, n->okey) < 0) {
            goto fail;
        }
    }
    /* snapshot (key, state) pairs first: filling the dict runs keys' __hash__, which may call
     * remove() and free nodes or move slots while the table is walked */
    Py_ssize_t size = (Py_ssize_t)1 << self->e.keys.bits;
    pairs = PyList_New(0);
    if (pairs == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; self->e.keys.slots != NULL && i < size; i++) {
        LNode *n = slot_node(&self->e.keys, &self->e.arena, i);
        if (n == NULL) {
            continue;
        }
        PyObject *pair = Py_BuildValue("(Oi)", n->skey != NULL ? n->skey : n->okey, n->state);
        if (pair == NULL || PyList_Append(pairs, pair) < 0) {
            Py_XDECREF(pair);
            goto fail;
        }
        Py_DECREF(pair);
    }
    self->e.busy = was_busy;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i); /* pairs is ours alone: no one mutates it */
        if (PyDict_SetItem(st, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) {
            goto fail;
        }
    }
    Py_DECREF(pairs);
    return Py_BuildValue("(NNNN)", s, q, nr, st);
fail:
    self->e.busy = was_busy;
    Py_XDECREF(pairs);
    Py_XDECREF(s);
    Py_XDECREF(q);
    Py_XDECREF(nr);
    Py_XDECREF(st);
    return NULL;
}

static int LIRS_traverse(LIRS *self, visitproc visit, void *arg)
{
    Table *t = &self->e.keys;
    Py_ssize_t size = t->slots != NULL ? (Py_ssize_t)1 << t->bits : 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        LNode *n = slot_node(t, &self->e.arena, i);
        if (n != NULL) {
            Py_VISIT(n->skey);
            Py_VISIT(n->okey);
        }
    }
    for (Py_ssize_t j = 0; j < self->ndead; j++) {
        Py_VISIT(self->dead[j]);
    }
    Py_VISIT(self->e.buf);
    return 0;
}

static int LIRS_tp_clear(LIRS *self)
{
    lforget_all(self);
    Py_CLEAR(self->e.buf);
    flush(self);
    return 0;
}

static void LIRS_dealloc(LIRS *self)
{
    PyObject_GC_UnTrack(self);
    LIRS_tp_clear(self);
    PyMem_Free(self->dead);
    engine_free(&self->e);
}

static Py_ssize_t LIRS_len(LIRS *self) { return (Py_ssize_t)self->n_res; }

static PyGetSetDef LIRS_getset[] = {
    ENGINE_GETSET,
    INT_GETTER("l_hirs", LIRS, l_hirs, "The HIR share: max(1, 1% of c), 0 for c <= 1."),
    INT_GETTER("l_lirs", LIRS, l_lirs, "The LIR set's target size: c - l_hirs."),
    INT_GETTER("n_lir", LIRS, n_lir, "The number of LIR keys."),
    INT_GETTER("n_res", LIRS, n_res, "The number of resident keys."),
    {NULL},
};

static PyMethodDef LIRS_methods[] = {
    ENGINE_METHODS(LIRS_access, LIRS_take, LIRS_add),
    {"remove", (PyCFunction)engine_remove, METH_O, "Forget the resident ``key``."},
    {"order", (PyCFunction)engine_order, METH_NOARGS,
     "Return the resident (key, weight) pairs, least valuable first (HIR, then LIR bottom-up)."},
    {"load", (PyCFunction)engine_load, METH_O,
     "Fill an empty engine with (key, weight) items (least valuable first)."},
    {"prepend", (PyCFunction)engine_prepend, METH_O,
     "Make ``keys`` (least valuable first) resident HIR keys at the victim end, weight 1."},
    {"_lists", (PyCFunction)LIRS_lists, METH_NOARGS,
     "Return (stack, q, nonres, {key: state}), each list oldest first (for tests)."},
    {NULL},
};

static PySequenceMethods LIRS_as_sequence = {
    .sq_length = (lenfunc)LIRS_len,
    .sq_contains = (objobjproc)engine_contains,
};

static PyTypeObject LIRSType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perflayer.cache._engines_c.LIRSEngine",
    .tp_doc = "LIRS over entries in C, decision-identical to _policy_adaptive._LIRSEngine.",
    .tp_basicsize = sizeof(LIRS),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = LIRS_new,
    .tp_dealloc = (destructor)LIRS_dealloc,
    .tp_traverse = (traverseproc)LIRS_traverse,
    .tp_clear = (inquiry)LIRS_tp_clear,
    .tp_methods = LIRS_methods,
    .tp_getset = LIRS_getset,
    .tp_as_sequence = &LIRS_as_sequence,
};

/* -- SimEngine: a simulation that is the cache's engine -------------------------------------- */

/* SimEngine(sim, real, buf), the twin of _policy_auto.SimEngine (read its docstring first:
   phantoms, extras, ``wt``, ``ex``): a view that makes a C LIRS, ARC or TinyLFU simulation the
   cache's engine. For every sequence of calls it returns what the Python class returns over the
   Python engines and TinyLFUPolicy, with the same order() and weight
   (tests/cache/test_sim_engine.py checks it call by call). The hot calls, step(key) (the
   simulation's access, once per buffered read), step_twin(key, other) (the same, for the
   default policy's TinyLFU twin: None on a hit, else how many victims ``other`` lacks) and
   add(key, weight) (a write), call a LIRS or ARC simulation's find, hit and insert directly, as
   its own access() and add() do.

   A TinyLFU simulation (the default policy's twin once it returns to the TinyLFU) is
   _tinylfu_c's: the view calls its methods, ``take`` bound once and called per step through
   vectorcall (None on a hit, else a new list of its victims), ``in``, order(), resize() and
   clear(), and keeps the rest (wt, ex, the count) as for the engines. A step_twin(key, view)
   counts the victims not in ``wt`` with the victims' own lookups, no Python-level call.

   Layout. ``wt``, Python's dict of the cache's keys and their weights (the objects given), and
   ``ex``, Python's OrderedDict of the extras, are one key table of nodes in an arena, as the
   engines' (a node per cached key: the key, its hash, its weight object and the weight parsed),
   and an intrusive list through the extras' nodes (oldest first; a node off it has prev NULL).
   A step looks each of the simulation's victims up and links the cached ones: ex holds exactly
   Python's keys in Python's order (a key that leaves and comes back is linked at the end: FIFO
   by first insertion, as the OrderedDict). A write's eviction unlinks the oldest extra, whose
   node is in hand: no lookup, and no Python code runs.
   why not a dict for ``wt`` (as until session 12, with ex a lazy list that asked ``in wt`` when
   an entry left it): the usual miss is a read's step, then the write of that phantom, which
   evicts the extra the step made. Through a dict the write paid an insert and a lookup and
   delete of the extra (an entry last touched about c writes ago), and the dict's dummies a
   periodic rebuild; the eviction now takes the node the step's lookup found (that lookup is
   the one miss the victim costs, where the dict's pop was) and the insert is a probe and a
   node: ``python -m benchmarks.engines_c --view --baseline SO`` (SO: the dict build) measured
   add 0.51-0.57x, step 0.89-1.11x, step + add 0.65-0.75x at 500-2,048 entries, LIRS and ARC,
   the miss (step + add) now about what the old design's access and copy add cost together
   (0.97-1.19x). The C API's prefetch asks for the key's slot here too (the default policy asks
   ``in`` first).
   Weights and a "cached" flag in the simulation's own nodes would save the victim's lookup as
   well, but a direct call of the simulation (AutoCore removes keys from it itself; the tests
   access it) would then drop cached keys unseen: not done.

   Safety. Every mutating call holds the simulation's busy flag (engine_enter, the engines'
   guard) from start to end: a key's __hash__ or __eq__, or a finalizer, that calls a mutating
   method of the view or of its simulation gets RuntimeError; reads (len, in, order) are allowed
   and see a consistent view (Python code runs only between the steps of a call). Over a TinyLFU
   the view holds a flag of its own instead, and the policy refuses a call only while a method of
   its own runs: a call of the policy from an __eq__ that the view's own lookups run (wt) goes
   through, as under the Python view; the view holds no pointer into the policy, only the
   lists its methods return, so it stays consistent. step_twin asks another container's ``in``
   after the step, the view idle (Python asks it after the ex updates): that ``in`` may call the
   view. The view holds strong references and supports the cycle collector.

   Where this differs from the Python class (never on AutoCore's calls): ``sim`` must be a C
   LIRSEngine, ARCEngine or TinyLFUPolicy and ``buf`` a collections.deque (TypeError otherwise);
   weights are C int64 as the engines' (TypeError for a non-int, OverflowError past int64, wt and
   weight unchanged then); ``real`` holds (key, weight) tuples or lists; a TinyLFU bounded by
   weight alone (max_entries None) makes a write's eviction raise AssertionError even under
   python -O; step_twin's arguments are positional; hash() and == run on other objects and
   another number of times. */

/* A key the cache holds: a node of the view's key table (``wt``), on ex's list when it is an
   extra (Python's ``ex``: oldest first). */
typedef struct CNode {
    uint32_t idx;        /* its arena index (first: see the arena) */
    struct CNode *prev;  /* (at NODE_LINK: a free node's link); NULL: not an extra */
    struct CNode *next;
    PyObject *key;       /* strong */
    PyObject *wobj;      /* the weight object given (strong), as wt's value */
    uint64_t hash;
    int64_t w;           /* wobj parsed */
} CNode;

typedef struct {
    PyObject_HEAD
    PyObject *sim;        /* strong; NULL after the cycle collector's tp_clear: a C LIRSEngine or
                             ARCEngine (an Engine) or a C TinyLFUPolicy */
    const EngineOps *ops; /* a LIRS or ARC simulation's; NULL: a TinyLFU simulation */
    PyObject *take;       /* a TinyLFU simulation's bound ``take`` (strong), else NULL */
    int busy;             /* a TinyLFU simulation's view is in a mutating call (a LIRS or ARC
                             simulation's view holds the engine's own flag instead) */
    PyObject *buf;        /* the shared read buffer (a deque), strong */
    PyObject *scratch;    /* list: a step's victims; empty between calls, untracked */
    Table ckeys;          /* wt: a node per cached key */
    Arena carena;
    CNode xhead;          /* ex's list sentinel: xhead.next is the oldest extra */
    Py_ssize_t nex;       /* len(ex) */
    int64_t c;            /* max_entries; -1: None (a TinyLFU simulation's only) */
    int64_t weight;       /* the sum of the cached keys' weights */
} View;

static PyTypeObject ViewType;

static int view_cleared(View *v)
{
    if (v->sim != NULL) {
        return 0;
    }
    PyErr_SetString(PyExc_RuntimeError, "SimEngine: used after the garbage collector cleared it");
    return -1;
}

/* The start of every mutating call: the simulation's busy flag for LIRS and ARC (their own
   methods refuse then too), the view's own for a TinyLFU (whose flag is private to _tinylfu_c:
   its own methods guard themselves while they run). -1 with RuntimeError when re-entered. */
static int view_enter(View *v)
{
    if (v->ops != NULL) {
        return engine_enter((Engine *)v->sim);
    }
    if (v->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "SimEngine: re-entrant call (from a key's __hash__ or __eq__)");
        return -1;
    }
    v->busy = 1;
    return 0;
}

static void view_leave(View *v)
{
    if (v->ops != NULL) {
        v->ops->leave((Engine *)v->sim);
    }
    else {
        v->busy = 0;
    }
}

/* A read's guard (in, order): the flag set across the lookups, restored after; returns the old
   one. why: a lookup runs keys' __eq__, which must not resize the table under the probe. */
static int view_hold(View *v)
{
    int *flag = v->ops != NULL ? &((Engine *)v->sim)->busy : &v->busy;
    int was = *flag;
    *flag = 1;
    return was;
}

static void view_unhold(View *v, int was)
{
    *(v->ops != NULL ? &((Engine *)v->sim)->busy : &v->busy) = was;
}

/* The C TinyLFUPolicy type (perflayer.cache._tinylfu_c), imported on first need and kept; NULL
   with no exception set when that extension is not built. why lazily: _engines_c works without
   it, and no import runs at this module's import (the package may be half imported then). */
static PyTypeObject *TinyType = NULL;

static PyTypeObject *tiny_type(void)
{
    if (TinyType != NULL) {
        return TinyType;
    }
    PyObject *mod = PyImport_ImportModule("perflayer.cache._tinylfu_c");
    if (mod == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *t = PyObject_GetAttrString(mod, "TinyLFUPolicy");
    Py_DECREF(mod);
    if (t == NULL || !PyType_Check(t)) {
        Py_XDECREF(t);
        PyErr_Clear();
        return NULL;
    }
    TinyType = (PyTypeObject *)t; /* (kept for the process, as DequeType) */
    return TinyType;
}

/* buf.clear(): the simulation has seen these reads (AutoCore's observation stepped them). */
static int buf_clear(PyObject *buf)
{
    PyObject *r;
    if (Py_IS_TYPE(buf, (PyTypeObject *)DequeType)) {
        if (Py_SIZE(buf) == 0) { /* why: the usual case, nothing buffered: no call */
            return 0;
        }
        r = PyObject_CallOneArg(DEQUE_CLEAR, buf);
    }
    else {
        r = PyObject_CallMethodNoArgs(buf, STR_CLEAR); /* a subclass's own clear() */
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Empty the scratch list, keeping its array for the next step. The keys are released with the
   simulation still busy: a finalizer that calls in is refused, as ARC's. */
static void scratch_clear(PyObject *list)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    PyObject **items = ((PyListObject *)list)->ob_item;
    Py_SET_SIZE(list, 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(items[i]);
    }
}

/* -- wt and ex ------------------------------------------------------------------------------ */

static PyObject *c_key_of(void *n) { return ((CNode *)n)->key; }

static uint64_t c_hash_of(void *n) { return ((CNode *)n)->hash; }

/* The cached key ``key`` (hash ``hk``): 1 found (*n), 0 absent, -1 an exception (from ==). */
static inline int c_find(View *v, PyObject *key, Py_hash_t hk, CNode **n)
{
    return table_find_h(&v->ckeys, &v->carena, key, (uint64_t)hk, (void **)n, c_key_of,
                        c_hash_of);
}

static void ex_init(View *v)
{
    v->xhead.prev = v->xhead.next = &v->xhead;
    v->nex = 0;
}

/* ex[k] = None for the cached node ``n``: at the end, unless an extra already (keeps its place). */
static inline void ex_link(View *v, CNode *n)
{
    if (n->prev != NULL) {
        return;
    }
    n->prev = v->xhead.prev;
    n->next = &v->xhead;
    v->xhead.prev->next = n;
    v->xhead.prev = n;
    v->nex++;
}

/* ex.pop(k, None) for the cached node ``n``. */
static inline void ex_unlink(View *v, CNode *n)
{
    if (n->prev == NULL) {
        return;
    }
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    v->nex--;
}

/* wt[key] = wobj for a key not cached: its node, or NULL with MemoryError (nothing changed). No
   Python code runs. */
static CNode *c_insert(View *v, PyObject *key, Py_hash_t hk, PyObject *wobj, int64_t w)
{
    if (table_reserve(&v->ckeys) < 0) {
        return NULL;
    }
    CNode *n = arena_take(&v->carena);
    if (n == NULL) {
        return NULL;
    }
    n->prev = n->next = NULL;
    n->key = Py_NewRef(key);
    n->wobj = Py_NewRef(wobj);
    n->hash = (uint64_t)hk;
    n->w = w;
    table_place(&v->ckeys, (uint64_t)hk, n);
    return n;
}

/* Forget the cached node ``n`` (off ex, off the table, its weight off the total); its key and
   weight object are handed to the caller (strong references) to release once the view is
   consistent. No Python code runs. */
static void c_drop(View *v, CNode *n, PyObject **key, PyObject **wobj)
{
    ex_unlink(v, n);
    table_remove(&v->ckeys, n, n->hash);
    v->weight -= n->w;
    *key = n->key;
    *wobj = n->wobj;
    arena_give(&v->carena, n);
}

/* wt.clear(); ex.clear(): every node off first (a finalizer reads an empty view), then the
   keys and weights released. */
static void c_clear(View *v)
{
    CNode *chain = NULL;
    Py_ssize_t size = v->ckeys.slots != NULL ? (Py_ssize_t)1 << v->ckeys.bits : 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        CNode *n = slot_node(&v->ckeys, &v->carena, i);
        if (n != NULL) {
            n->next = chain; /* (chained through next: arena_give writes prev's word) */
            chain = n;
        }
    }
    if (size) {
        memset(v->ckeys.slots, 0, (size_t)size * sizeof(Slot));
    }
    v->ckeys.used = 0;
    ex_init(v);
    v->weight = 0;
    while (chain != NULL) {
        CNode *next = chain->next;
        PyObject *k = chain->key, *w = chain->wobj;
        arena_give(&v->carena, chain);
        Py_DECREF(k);
        Py_DECREF(w);
        chain = next;
    }
}

/* -- the view's steps ----------------------------------------------------------------------- */

/* What step_twin(key, other) counts over a miss's victims: with ``other`` None nothing; with
   this view itself, the victims not cached (found by the victims' own lookups, no Python-level
   call); with any other container, the victims are kept (a new list) and asked after the step,
   once the view is consistent and no longer busy, as Python's ``sum(1 for v in victims if v not
   in other)`` runs after its ex updates. */
typedef struct {
    PyObject *other;  /* the argument (Py_None: nothing to count) */
    Py_ssize_t lacks; /* the count so far */
    PyObject *keep;   /* another container's victims, or NULL */
    int write;        /* the step is a set without a get (a TinyLFU's take(key, True)) */
} Twin;

/* for v in victims: if v in wt: ex[v] = None; then ex.pop(key, None) (``key`` NULL: done by
   the caller; ``hk``: key's hash, -1: not computed yet); and the twin's tally (``tw``: NULL for
   step() and add()). 0, or -1. */
static int view_victims(View *v, PyObject *victims, PyObject *key, Py_hash_t hk, Twin *tw)
{
    int self = tw != NULL && tw->other == (PyObject *)v;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(victims); i++) {
        PyObject *k = PyList_GET_ITEM(victims, i); /* ours alone (busy): held by the list */
        Py_hash_t h = key_hash(k);
        CNode *n;
        int f = h == -1 ? -1 : c_find(v, k, h, &n);
        if (f < 0) {
            return -1;
        }
        if (f) {
            ex_link(v, n); /* the cache holds it until the next write */
        }
        else if (self) {
            tw->lacks++;
        }
    }
    if (key != NULL && v->nex) { /* why: no probe when there is no extra */
        CNode *n;
        int f = hk == -1 && (hk = key_hash(key)) == -1 ? -1 : c_find(v, key, hk, &n);
        if (f < 0) {
            return -1;
        }
        if (f) {
            ex_unlink(v, n);
        }
    }
    if (tw != NULL && tw->other != Py_None && !self) {
        tw->keep = PyList_GetSlice(victims, 0, PyList_GET_SIZE(victims));
        return tw->keep == NULL ? -1 : 0;
    }
    return 0;
}

/* step()'s miss: the simulation inserts ``key`` (``ghost``: its history node, or NULL); its
   victims the cache holds become extras; ``key`` is no extra. 0, or -1 with an exception. */
static inline int view_miss(View *v, PyObject *key, uint64_t h, void *ghost,
                            const EngineOps *ops, Twin *tw)
{
    /* why the scratch list: a step's victims are read here and dropped, a new list per miss
       would be an allocation and a GC track per access */
    PyObject *out = v->scratch;
    /* ex.pop(key) asked first: the inserted key is never among a LIRS or ARC insert's victims,
       so it is an extra after them iff before. why: no probe when there was no extra (a step of
       a new key after a write, mostly); its node stays put (busy: only reads run meanwhile) */
    CNode *kn = NULL;
    if (v->nex && c_find(v, key, (Py_hash_t)h, &kn) < 0) {
        return -1;
    }
    int r = sim_insert((Engine *)v->sim, key, h, ghost, out, ops);
    if (r == 0) {
        r = view_victims(v, out, NULL, -1, tw);
    }
    if (r == 0 && kn != NULL) {
        ex_unlink(v, kn);
    }
    scratch_clear(out);
    return r;
}

/* Evict extras, oldest first, while the cache holds more than the capacity: a new list of
   them, or NULL with an exception (KeyError when there is no extra, as Python's popitem;
   AssertionError when max_entries is None, as Python's assert, even under python -O). No
   Python code runs but weights' finalizers (busy: they cannot call in). */
static PyObject *view_evict(View *v)
{
    if (v->c < 0) {
        PyErr_SetString(PyExc_AssertionError, "SimEngine: max_entries is None");
        return NULL;
    }
    /* why sized: the count is known, len(wt) - c, so one allocation holds the victims instead of
       a list grown by appends */
    Py_ssize_t m = v->ckeys.used - (Py_ssize_t)v->c;
    PyObject *out = PyList_New(m > 0 ? m : 0);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        if (v->nex == 0) {
            PyErr_SetString(PyExc_KeyError, "dictionary is empty");
            Py_SET_SIZE(out, j);
            Py_DECREF(out);
            return NULL;
        }
        PyObject *k, *w;
        c_drop(v, v->xhead.next, &k, &w); /* the node in hand: no lookup */
        PyList_SET_ITEM(out, j, k);       /* (k's reference) */
        Py_DECREF(w);
    }
    return out;
}

/* step(key) of a LIRS or ARC simulation, inlined per engine with its constant ``ops``, as
   engine_access: 1 a hit, 0 a miss, -1 an exception. */
static inline int view_step(View *v, PyObject *key, const EngineOps *ops, Twin *tw)
{
    if (view_cleared(v) < 0) {
        return -1;
    }
    Engine *e = (Engine *)v->sim;
    if (engine_enter(e) < 0) {
        return -1;
    }
    uint64_t h;
    void *n;
    int r = -1;
    int f = ops->find(e, key, &h, &n);
    if (f > 0 && ops->resident(n)) {
        if (ops->hit(e, n, key) == 0) {
            r = 1;
        }
    }
    else if (f >= 0 && view_miss(v, key, h, f ? n : NULL, ops, tw) == 0) {
        r = 0;
    }
    ops->leave(e);
    return r;
}

/* A TinyLFU simulation's step, the view busy: ``sim.take(key)`` (its bound method, called
   through vectorcall: the policy's internals are _tinylfu_c's), None on a hit, else its
   victims, which are then as view_miss's. 1 a hit, 0 a miss, -1 an exception. */
static int tiny_take(View *v, PyObject *key, Twin *tw)
{
    PyObject *args[3] = {NULL, key, Py_True};
    size_t n = tw != NULL && tw->write ? 2 : 1;
    PyObject *victims =
        PyObject_Vectorcall(v->take, args + 1, n | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (victims == NULL) {
        return -1;
    }
    if (victims == Py_None) {
        Py_DECREF(victims);
        return 1;
    }
    int r = -1;
    if (!PyList_CheckExact(victims)) {
        PyErr_Format(PyExc_TypeError, "SimEngine: the simulation's take() returned %.200s",
                     Py_TYPE(victims)->tp_name);
    }
    else if (view_victims(v, victims, key, -1, tw) == 0) {
        r = 0;
    }
    Py_DECREF(victims); /* (busy: a finalizer that calls in is refused) */
    return r;
}

static int tiny_step(View *v, PyObject *key, Twin *tw)
{
    if (view_cleared(v) < 0 || view_enter(v) < 0) {
        return -1;
    }
    int r = tiny_take(v, key, tw);
    view_leave(v);
    return r;
}

/* wt[key] = weight with the total kept (``n``: the key's node, NULL: not cached), then the
   evictions: add()'s end. A new list, or NULL with an exception (nothing stored on an
   overflow). */
static PyObject *view_store(View *v, CNode *n, PyObject *key, Py_hash_t hk, PyObject *weight,
                            int64_t w)
{
    int64_t total;
    if (__builtin_sub_overflow(v->weight, n != NULL ? n->w : 0, &total) ||
        __builtin_add_overflow(total, w, &total)) {
        PyErr_Format(PyExc_OverflowError,
                     "SimEngine.add: the total weight would overflow int64 (total %lld, weight "
                     "%lld)",
                     (long long)v->weight, (long long)w);
        return NULL;
    }
    if (n != NULL) { /* cached already: a new weight, its place in ex kept */
        PyObject *old = n->wobj;
        n->wobj = Py_NewRef(weight);
        n->w = w;
        Py_DECREF(old); /* (an int: busy, a subclass's finalizer cannot call in) */
    }
    else if (c_insert(v, key, hk, weight, w) == NULL) {
        return NULL;
    }
    v->weight = total;
    return view_evict(v);
}

/* add(key, weight) of a LIRS or ARC simulation, inlined per engine as view_step; ``w``:
   ``weight`` parsed. Python's ``if key not in sim and key not in wt: step(key)``, then the
   store. why one node per cached key, not a dict: the usual write is a phantom's (a read miss
   the observation stepped, then its set), which inserts the key and evicts the oldest extra:
   with the weight in the extra's node the eviction takes the node in hand, no lookup. */
static inline PyObject *view_add(View *v, PyObject *key, PyObject *weight, int64_t w,
                                 const EngineOps *ops)
{
    Engine *e = (Engine *)v->sim;
    if (engine_enter(e) < 0) {
        return NULL;
    }
    PyObject *out = NULL;
    uint64_t h;
    void *n;
    CNode *cn;
    int f, g;
    Py_hash_t hh = PyUnicode_CheckExact(key) ? ((PyASCIIObject *)key)->hash : -1;
    if (hh != -1) {
        /* why: the key's slot in wt, asked for before the simulation's find, whose own probe
           then overlaps the miss */
        __builtin_prefetch(&v->ckeys.slots[home((uint64_t)hh, &v->ckeys)], 0);
    }
    if (buf_clear(v->buf) < 0 || (f = ops->find(e, key, &h, &n)) < 0 ||
        (g = c_find(v, key, (Py_hash_t)h, &cn)) < 0) {
        goto done;
    }
    if (!g && !(f && ops->resident(n)) && view_miss(v, key, h, f ? n : NULL, ops, NULL) < 0) {
        goto done; /* a write the observation did not see: the simulation steps it first */
    }
    out = view_store(v, g ? cn : NULL, key, (Py_hash_t)h, weight, w);
done:
    ops->leave(e);
    return out;
}

/* add(key, weight) of a TinyLFU simulation, as view_add. */
static PyObject *tiny_add(View *v, PyObject *key, PyObject *weight, int64_t w)
{
    if (view_enter(v) < 0) {
        return NULL;
    }
    PyObject *out = NULL;
    int in_sim, g;
    Py_hash_t hk;
    CNode *cn;
    if (buf_clear(v->buf) < 0 || (in_sim = PySequence_Contains(v->sim, key)) < 0 ||
        (hk = key_hash(key)) == -1 || (g = c_find(v, key, hk, &cn)) < 0) {
        goto done;
    }
    if (!g && !in_sim && tiny_take(v, key, NULL) < 0) {
        goto done; /* a write the observation did not see: the simulation steps it first */
    }
    out = view_store(v, g ? cn : NULL, key, hk, weight, w);
done:
    view_leave(v);
    return out;
}

/* -- the view's type ------------------------------------------------------------------------ */

static PyObject *View_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sim", "real", "buf", NULL};
    PyObject *sim, *real, *buf;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:SimEngine", kwlist, &sim, &real, &buf)) {
        return NULL;
    }
    int engine = Py_IS_TYPE(sim, &LIRSType) || Py_IS_TYPE(sim, &ARCType);
    if (!engine) {
        PyTypeObject *tt = tiny_type();
        if (tt == NULL || !Py_IS_TYPE(sim, tt)) {
            PyErr_Format(PyExc_TypeError,
                         "SimEngine: sim must be a C LIRSEngine, ARCEngine or TinyLFUPolicy, got "
                         "%.200s",
                         Py_TYPE(sim)->tp_name);
            return NULL;
        }
    }
    if (!PyObject_TypeCheck(buf, (PyTypeObject *)DequeType)) {
        PyErr_Format(PyExc_TypeError, "SimEngine: buf must be a collections.deque, got %.200s",
                     Py_TYPE(buf)->tp_name);
        return NULL;
    }
    PyObject *items = PySequence_Tuple(real); /* owned: keys' __hash__ may mutate ``real`` */
    if (items == NULL) {
        return NULL;
    }
    View *v = (View *)type->tp_alloc(type, 0);
    if (v == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    v->sim = Py_NewRef(sim);
    v->buf = Py_NewRef(buf);
    v->carena.size = sizeof(CNode);
    ex_init(v);
    if ((v->scratch = PyList_New(0)) == NULL || table_init(&v->ckeys, 3) < 0) {
        goto fail;
    }
    PyObject_GC_UnTrack(v->scratch); /* never part of a cycle: empty between calls */
    if (engine) {
        v->ops = ((Engine *)sim)->ops;
        v->c = ((Engine *)sim)->c;
    }
    else {
        /* max_entries = sim.max_entries (None: -1); the bound take, called per step */
        PyObject *me = PyObject_GetAttr(sim, STR_MAX_ENTRIES);
        if (me == NULL) {
            goto fail;
        }
        v->c = me == Py_None ? -1 : PyLong_AsLongLong(me);
        Py_DECREF(me);
        if ((v->c == -1 && PyErr_Occurred()) ||
            (v->take = PyObject_GetAttr(sim, STR_TAKE)) == NULL) {
            goto fail;
        }
    }
    if (view_enter(v) < 0) {
        goto fail;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(items);
    int ok = 0;
    PyObject *k = NULL, *w = NULL; /* strong: a key's __hash__ may empty a list pair */
    /* wt = dict(real); weight = sum(wt.values()) */
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *pair = PyTuple_GET_ITEM(items, j);
        int64_t wv, total;
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError, "SimEngine: real must hold (key, weight) pairs, got %R",
                         pair);
            goto done;
        }
        k = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 0));
        w = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 1));
        Py_hash_t hk;
        CNode *n;
        int f;
        if (parse_weight(w, &wv) < 0 || (hk = key_hash(k)) == -1 ||
            (f = c_find(v, k, hk, &n)) < 0) {
            goto done;
        }
        if (__builtin_sub_overflow(v->weight, f ? n->w : 0, &total) ||
            __builtin_add_overflow(total, wv, &total)) {
            PyErr_SetString(PyExc_OverflowError, "SimEngine: the total weight overflows int64");
            goto done;
        }
        if (f) { /* a repeated key: the last weight, as dict(real) */
            Py_SETREF(n->wobj, Py_NewRef(w));
            n->w = wv;
        }
        else if (c_insert(v, k, hk, w, wv) == NULL) {
            goto done;
        }
        v->weight = total;
        Py_CLEAR(k);
        Py_CLEAR(w);
    }
    /* ex = OrderedDict((k, None) for k, _w in real if k not in sim) */
    for (Py_ssize_t j = 0; j < m; j++) {
        k = Py_NewRef(PySequence_Fast_GET_ITEM(PyTuple_GET_ITEM(items, j), 0));
        int in;
        if (engine) {
            uint64_t h;
            void *n;
            int f = v->ops->find((Engine *)sim, k, &h, &n);
            in = f < 0 ? -1 : (f && v->ops->resident(n));
        }
        else {
            in = PySequence_Contains(sim, k);
        }
        if (in == 0) { /* cached (just stored): an extra */
            CNode *n;
            Py_hash_t hk = key_hash(k);
            in = hk == -1 ? -1 : c_find(v, k, hk, &n);
            if (in > 0) {
                ex_link(v, n);
                in = 0;
            }
            else if (in == 0) { /* (stored above: only a key unequal to itself is not found) */
                PyErr_Format(PyExc_ValueError, "SimEngine: key %R is not equal to itself", k);
                in = -1;
            }
        }
        if (in < 0) {
            goto done;
        }
        Py_CLEAR(k);
    }
    ok = 1;
done:
    Py_XDECREF(k);
    Py_XDECREF(w);
    view_leave(v);
    Py_DECREF(items);
    if (ok) {
        return (PyObject *)v;
    }
    goto fail2;
fail:
    Py_DECREF(items);
fail2:
    Py_DECREF(v);
    return NULL;
}

/* step(key), step_twin(key, other): 1 a hit, 0 a miss, -1 an exception. */
static int view_dispatch_step(View *v, PyObject *key, Twin *tw)
{
    if (v->ops == &LIRS_ops) {
        return view_step(v, key, &LIRS_ops, tw);
    }
    if (v->ops == &ARC_ops) {
        return view_step(v, key, &ARC_ops, tw);
    }
    return tiny_step(v, key, tw);
}

static PyObject *View_step(View *v, PyObject *key)
{
    int r = view_dispatch_step(v, key, NULL);
    if (r < 0) {
        return NULL;
    }
    return Py_NewRef(r ? Py_True : Py_False);
}

/* step_twin(key, other=None, write=False): the step; None on a hit, else how many of the
   simulation's victims ``other`` lacks (0 for None), the TinyLFU twin's step(key, other, write)
   contract (``write``: a TinyLFU simulation takes a set without a get, take(key, True); LIRS
   and ARC take any step as a read-or-insert). */
static PyObject *View_step_twin(View *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "step_twin() takes 1 to 3 arguments (%zd given)", nargs);
        return NULL;
    }
    int write = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    if (write < 0) {
        return NULL;
    }
    Twin tw = {nargs >= 2 ? args[1] : Py_None, 0, NULL, write};
    int r = view_dispatch_step(v, args[0], &tw);
    if (r != 0) {
        Py_XDECREF(tw.keep);
        return r < 0 ? NULL : Py_NewRef(Py_None);
    }
    if (tw.keep != NULL) { /* another container: asked now, the view consistent and idle */
        PyObject *other = Py_NewRef(tw.other);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(tw.keep); i++) {
            int in = PySequence_Contains(other, PyList_GET_ITEM(tw.keep, i)); /* ours alone */
            if (in < 0) {
                tw.lacks = -1;
                break;
            }
            tw.lacks += !in;
        }
        Py_DECREF(other);
        Py_DECREF(tw.keep);
        if (tw.lacks < 0) {
            return NULL;
        }
    }
    return PyLong_FromSsize_t(tw.lacks);
}

static PyObject *View_add(View *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int64_t w;
    if (view_cleared(v) < 0 || parse_weight(args[1], &w) < 0) {
        return NULL;
    }
    if (v->ops == &LIRS_ops) {
        return view_add(v, args[0], args[1], w, &LIRS_ops);
    }
    if (v->ops == &ARC_ops) {
        return view_add(v, args[0], args[1], w, &ARC_ops);
    }
    return tiny_add(v, args[0], args[1], w);
}

static PyObject *View_remove(View *v, PyObject *key)
{
    if (view_cleared(v) < 0 || view_enter(v) < 0) {
        return NULL;
    }
    int r = -1, f;
    Py_hash_t hk;
    CNode *n;
    PyObject *k = NULL, *w = NULL;
    if (buf_clear(v->buf) < 0 || (hk = key_hash(key)) == -1 || (f = c_find(v, key, hk, &n)) < 0) {
        goto done;
    }
    if (f) { /* wt.pop(key); ex.pop(key, None) */
        c_drop(v, n, &k, &w);
    }
    r = 0; /* the simulation keeps the key: the caller removes it there, as from every other */
done:
    Py_XDECREF(k); /* (busy: a finalizer that calls in is refused) */
    Py_XDECREF(w);
    view_leave(v);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* for v in victims: if v in wt: ex[v] = None (a resize's victims). 0, or -1. */
static int view_resize_victims(View *v, PyObject *victims)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(victims); i++) {
        PyObject *k = PyList_GET_ITEM(victims, i); /* ours alone (busy): held by the list */
        Py_hash_t h = key_hash(k);
        CNode *n;
        int f = h == -1 ? -1 : c_find(v, k, h, &n);
        if (f < 0) {
            return -1;
        }
        if (f) {
            ex_link(v, n);
        }
    }
    return 0;
}

static PyObject *View_resize(View *v, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "resize() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (view_cleared(v) < 0 || view_enter(v) < 0) {
        return NULL;
    }
    PyObject *out = NULL, *victims = NULL;
    if (buf_clear(v->buf) < 0) {
        goto done;
    }
    if (v->ops != NULL) {
        victims = engine_resize_held((Engine *)v->sim, args[0], args[1]);
    }
    else {
        PyObject *call[3] = {v->sim, args[0], args[1]};
        victims = PyObject_VectorcallMethod(STR_RESIZE, call, 3, NULL);
        if (victims != NULL && !PyList_CheckExact(victims)) {
            PyErr_Format(PyExc_TypeError, "SimEngine: the simulation's resize() returned %.200s",
                         Py_TYPE(victims)->tp_name);
            goto done;
        }
    }
    if (victims == NULL || view_resize_victims(v, victims) < 0) {
        goto done;
    }
    if (v->ops != NULL) {
        v->c = ((Engine *)v->sim)->c;
    }
    else { /* max_entries = the argument (the simulation took it: None or an int) */
        int64_t c = args[0] == Py_None ? -1 : PyLong_AsLongLong(args[0]);
        if (c == -1 && PyErr_Occurred()) {
            goto done;
        }
        v->c = c;
    }
    out = view_evict(v);
done:
    view_leave(v);
    Py_XDECREF(victims);
    return out;
}

static PyObject *View_clear(View *v, PyObject *Py_UNUSED(ignored))
{
    if (view_cleared(v) < 0 || view_enter(v) < 0) {
        return NULL;
    }
    int r = buf_clear(v->buf);
    if (r == 0 && v->ops != NULL) {
        r = engine_clear_held((Engine *)v->sim);
    }
    else if (r == 0) {
        PyObject *x = PyObject_CallMethodNoArgs(v->sim, STR_CLEAR);
        r = x == NULL ? -1 : 0;
        Py_XDECREF(x);
    }
    if (r == 0) {
        c_clear(v);
    }
    view_leave(v);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Append (key, wt[key]) to ``out`` for the cached node ``n``. 0, or -1. */
static int order_node(PyObject *out, CNode *n)
{
    PyObject *t = PyTuple_Pack(2, n->key, n->wobj);
    if (t == NULL) {
        return -1;
    }
    int r = PyList_Append(out, t);
    Py_DECREF(t);
    return r;
}

/* Append (key, wt[key]) to ``out`` if the key is cached. 0, or -1. */
static int order_pair(View *v, PyObject *out, PyObject *key)
{
    Py_INCREF(key); /* a lookup runs __eq__: hold the key across it */
    Py_hash_t hk = key_hash(key);
    CNode *n;
    int f = hk == -1 ? -1 : c_find(v, key, hk, &n);
    Py_DECREF(key);
    return f <= 0 ? f : order_node(out, n);
}

typedef struct {
    View *v;
    PyObject *out;
} OrderPass;

static int order_resident(void *ctx, PyObject *key, int64_t *Py_UNUSED(w))
{
    OrderPass *p = ctx;
    return order_pair(p->v, p->out, key);
}

/* A TinyLFU simulation's residents in wt, from its own order(): Python's ``[(k, wt[k]) for k,
   _w in sim.order() if k in wt]``. 0, or -1. */
static int tiny_order(View *v, PyObject *out)
{
    PyObject *pairs = PyObject_CallMethodNoArgs(v->sim, STR_ORDER);
    if (pairs == NULL) {
        return -1;
    }
    int r = 0;
    if (!PyList_CheckExact(pairs)) {
        PyErr_Format(PyExc_TypeError, "SimEngine: the simulation's order() returned %.200s",
                     Py_TYPE(pairs)->tp_name);
        r = -1;
    }
    for (Py_ssize_t i = 0; r == 0 && i < PyList_GET_SIZE(pairs); i++) {
        PyObject *p = PyList_GET_ITEM(pairs, i); /* ours alone: held by the list */
        if (!PyTuple_CheckExact(p) || PyTuple_GET_SIZE(p) != 2) {
            PyErr_Format(PyExc_TypeError, "SimEngine: the simulation's order() holds %R", p);
            r = -1;
            break;
        }
        r = order_pair(v, out, PyTuple_GET_ITEM(p, 0));
    }
    Py_DECREF(pairs);
    return r;
}

static PyObject *View_order(View *v, PyObject *Py_UNUSED(ignored))
{
    if (view_cleared(v) < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    /* busy across the walks, as engine_order: the lookups run keys' __eq__ and the appends may
       run a finalizer; neither may mutate the list, the table or the simulation under the walk */
    int was_busy = view_hold(v);
    int r = 0;
    for (CNode *n = v->xhead.next; r == 0 && n != &v->xhead; n = n->next) {
        r = order_node(out, n);
    }
    if (r == 0 && v->ops != NULL) {
        OrderPass p = {v, out};
        r = v->ops->each_resident((Engine *)v->sim, order_resident, &p);
    }
    else if (r == 0) {
        r = tiny_order(v, out);
    }
    view_unhold(v, was_busy);
    if (r < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *View_extras(View *v, PyObject *Py_UNUSED(ignored))
{
    if (view_cleared(v) < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(v->nex);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t j = 0;
    for (CNode *n = v->xhead.next; n != &v->xhead; n = n->next) {
        PyList_SET_ITEM(out, j++, Py_NewRef(n->key)); /* (no Python code runs) */
    }
    return out;
}

static Py_ssize_t View_len(View *v)
{
    return view_cleared(v) < 0 ? -1 : v->ckeys.used;
}

static int View_contains(View *v, PyObject *key)
{
    if (view_cleared(v) < 0) {
        return -1;
    }
    Py_hash_t hk = key_hash(key);
    if (hk == -1) {
        return -1;
    }
    int was_busy = view_hold(v); /* == may run Python code: no mutation under the probe */
    CNode *n;
    Py_INCREF(key);
    int f = c_find(v, key, hk, &n);
    Py_DECREF(key);
    view_unhold(v, was_busy);
    return f;
}

static PyObject *View_get_max_entries(View *v, void *Py_UNUSED(c))
{
    if (v->c < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(v->c);
}

static PyObject *View_get_sim(View *v, void *Py_UNUSED(c))
{
    if (view_cleared(v) < 0) {
        return NULL;
    }
    return Py_NewRef(v->sim);
}

static int View_traverse(View *v, visitproc visit, void *arg)
{
    Py_VISIT(v->sim);
    Py_VISIT(v->take);
    Py_VISIT(v->buf);
    Py_ssize_t size = v->ckeys.slots != NULL ? (Py_ssize_t)1 << v->ckeys.bits : 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        CNode *n = slot_node(&v->ckeys, &v->carena, i);
        if (n != NULL) {
            Py_VISIT(n->key);
            Py_VISIT(n->wobj);
        }
    }
    return 0;
}

static int View_tp_clear(View *v)
{
    Py_CLEAR(v->sim); /* first: a finalizer run below that calls in is told the view is gone */
    Py_CLEAR(v->take);
    Py_CLEAR(v->buf);
    if (v->xhead.next != NULL) { /* (NULL: tp_new failed before ex_init) */
        c_clear(v);
    }
    return 0;
}

static void View_dealloc(View *v)
{
    PyObject_GC_UnTrack(v);
    View_tp_clear(v);
    PyMem_Free(v->ckeys.slots);
    arena_release(&v->carena);
    Py_XDECREF(v->scratch);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static PyGetSetDef View_getset[] = {
    {"sim", (getter)View_get_sim, NULL, "The simulation that is this engine (read-only).", NULL},
    INT_GETTER("weight", View, weight, "The sum of the cache's keys' weights."),
    {"max_entries", (getter)View_get_max_entries, NULL, "The capacity in entries (None: none).",
     NULL},
    {NULL},
};

static PyMethodDef View_methods[] = {
    {"step", (PyCFunction)View_step, METH_O,
     "The simulation's access of ``key`` (True on a hit), keeping the extras."},
    {"step_twin", (PyCFunction)(void (*)(void))View_step_twin, METH_FASTCALL,
     "As step: None on a hit, else how many of the simulation's victims ``other`` lacks (0 for "
     "None)."},
    {"add", (PyCFunction)(void (*)(void))View_add, METH_FASTCALL,
     "The cache stores ``key``: a phantom (or a new key) becomes resident; evict extras."},
    {"update", (PyCFunction)(void (*)(void))View_add, METH_FASTCALL,
     "Record a new weight for ``key`` (as add: an overwrite is no access of the simulation)."},
    {"remove", (PyCFunction)View_remove, METH_O,
     "Forget ``key`` (the caller removes it from the simulation, as from every other)."},
    {"resize", (PyCFunction)(void (*)(void))View_resize, METH_FASTCALL,
     "Resize the simulation; evict extras down to the new capacity."},
    {"clear", (PyCFunction)View_clear, METH_NOARGS, "Forget every key, here and in the simulation."},
    {"order", (PyCFunction)View_order, METH_NOARGS,
     "Return the resident keys and weights, least valuable first (the extras first)."},
    {"_extras", (PyCFunction)View_extras, METH_NOARGS,
     "Return the extras, oldest first (Python's list(ex), for tests)."},
    {NULL},
};

static PySequenceMethods View_as_sequence = {
    .sq_length = (lenfunc)View_len,
    .sq_contains = (objobjproc)View_contains,
};

static PyTypeObject ViewType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perflayer.cache._engines_c.SimEngine",
    .tp_doc = "A C LIRS, ARC or TinyLFU simulation that is the cache's engine, "
              "decision-identical to _policy_auto.SimEngine.",
    .tp_basicsize = sizeof(View),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = View_new,
    .tp_dealloc = (destructor)View_dealloc,
    .tp_traverse = (traverseproc)View_traverse,
    .tp_clear = (inquiry)View_tp_clear,
    .tp_methods = View_methods,
    .tp_getset = View_getset,
    .tp_as_sequence = &View_as_sequence,
};

/* -- the module ----------------------------------------------------------------------------- */

static struct PyModuleDef engines_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perflayer.cache._engines_c",
    .m_doc = "C twins of perflayer.cache._policy_adaptive's engines (ARCEngine, LIRSEngine) and "
             "of _policy_auto.SimEngine.",
    .m_size = -1,
};

/* -- the C API (for the default policy's core, _auto_c.c) ------------------------------------ */

/* Prefetch the home slot of hash ``hh`` in an ARC or LIRS engine's key table, or in a
   SimEngine's own key table (``wt``: the ``in`` the default policy asks first) and its LIRS or
   ARC simulation's (a TinyLFU's is _tinylfu_c's); any other object: nothing; no Python code
   runs. ``p`` is an engine or the object a bound step is bound to: for a SimEngine engine and
   its ``view.step``, the same slots. Why: the default policy steps one key through its engine and
   three simulations one after the other, each starting on a cold miss of its first slot (~85%
   of a LIRS step in a whole cache, helper HE's profile); asked for all of them first, the misses
   overlap. */
static void engine_prefetch(PyObject *p, Py_hash_t hh)
{
    if (Py_IS_TYPE(p, &ViewType)) { /* a SimEngine: its own and its simulation's */
        View *v = (View *)p;
        if ((p = v->sim) == NULL) { /* (cleared: its table is empty) */
            return;
        }
        __builtin_prefetch(&v->ckeys.slots[home((uint64_t)hh, &v->ckeys)], 0);
    }
    if (!Py_IS_TYPE(p, &ARCType) && !Py_IS_TYPE(p, &LIRSType)) {
        return;
    }
    Engine *e = (Engine *)p;
    if (e->keys.slots != NULL) {
        __builtin_prefetch(&e->keys.slots[home((uint64_t)hh, &e->keys)], 0);
    }
}

/* The capsule ``_engines_c._C_API`` (name: "perflayer.cache._engines_c._C_API"): an
   ``EnginesCAPI`` (_capi.h). */

static EnginesCAPI c_api = {1, engine_prefetch};

PyMODINIT_FUNC PyInit__engines_c(void)
{
    PyObject *col = PyImport_ImportModule("collections");
    if (col == NULL) {
        return NULL;
    }
    DequeType = PyObject_GetAttrString(col, "deque");
    Py_DECREF(col);
    if (DequeType == NULL) {
        return NULL;
    }
    STR_CLEAR = PyUnicode_InternFromString("clear");
    STR_TAKE = PyUnicode_InternFromString("take");
    STR_RESIZE = PyUnicode_InternFromString("resize");
    STR_ORDER = PyUnicode_InternFromString("order");
    STR_MAX_ENTRIES = PyUnicode_InternFromString("max_entries");
    if (STR_CLEAR == NULL || STR_TAKE == NULL || STR_RESIZE == NULL || STR_ORDER == NULL ||
        STR_MAX_ENTRIES == NULL) {
        return NULL;
    }
    DEQUE_CLEAR = PyObject_GetAttr(DequeType, STR_CLEAR);
    if (DEQUE_CLEAR == NULL) {
        return NULL;
    }
    PyTypeObject *types[] = {&ARCType, &LIRSType, &ViewType};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0) {
            return NULL;
        }
    }
    PyObject *m = PyModule_Create(&engines_module);
    if (m == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const char *name = strrchr(types[i]->tp_name, '.') + 1;
        if (PyModule_AddObjectRef(m, name, (PyObject *)types[i]) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    PyObject *cap = PyCapsule_New(&c_api, "perflayer.cache._engines_c._C_API", NULL);
    if (cap == NULL || PyModule_AddObject(m, "_C_API", cap) < 0) {
        Py_XDECREF(cap);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
