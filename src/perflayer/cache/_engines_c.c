/*
 * perflayer.cache._engines_c: C twins of the adaptive policy's engines
 * (perflayer/cache/_policy_adaptive.py; read that module's essay first): ARCEngine, the twin of
 * _ARCEngine (Megiddo and Modha, FAST 2003), and LIRSEngine, the twin of _LIRSEngine (Jiang and
 * Zhang, SIGMETRICS 2002; its layout is described above its code below). For every sequence of
 * calls each returns the same victims in the same order, the same order() and the same internal
 * lists (ghosts, stack, history) as the Python class (tests/cache/test_engines_c.py checks it
 * step by step). AdaptivePolicy runs them when the extension is built (PERFLAYER_PURE_PYTHON
 * selects the Python classes); its adoption path uses copy() and set_weights(). Weights are
 * int64: where Python's int would grow past it, add(), update(), load() and set_weights() raise
 * OverflowError and change nothing (the one place the twins may differ).
 *
 * Layout: every key the engine knows (resident in T1 or T2, or a ghost in B1 or B2) has one
 * node; each of the four lists is an intrusive circular doubly linked list with a sentinel
 * (OrderedDict order: head.next is the LRU end, head.prev the MRU end), and one open-addressing
 * table of (hash, node) slots finds a key's node (linear probing, at most half full,
 * backward-shift deletion, as _tinylfu_c.c's keys table). A key lives in at most one list, as in
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

#define GOLDEN 0x9E3779B97F4A7C15ULL
#define READ_BUFFER 1024 /* _policy._READ_BUFFER: the default buffer's maxlen */
#define FREELIST_MAX 256
#define T1 0
#define T2 1
#define B1 2
#define B2 3

static PyObject *DequeType = NULL; /* collections.deque */
static PyObject *STR_CLEAR = NULL; /* "clear" */

typedef struct Node {
    struct Node *prev;
    struct Node *next;
    PyObject *key; /* strong */
    uint64_t hash;
    int64_t weight; /* residents only */
    int list;       /* T1, T2, B1 or B2 */
} Node;

typedef struct {
    Node head; /* sentinel: head.next is the LRU end, head.prev the MRU end */
    Py_ssize_t len;
} List;

typedef struct {
    uint64_t hash;
    void *node; /* a Node * or an LNode *; NULL: empty */
} Slot;

typedef struct {
    Slot *slots;
    int bits;
    Py_ssize_t used;
} Table;

typedef struct {
    PyObject_HEAD
    List lists[4];
    Table keys;
    int64_t c;
    double p;
    int64_t weight;
    PyObject *buf; /* the read buffer (a deque shared with AdaptivePolicy), strong */
    int busy;
    Node *freelist;
    int nfree;
} ARC;

/* -- lists ---------------------------------------------------------------------------------- */

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

/* -- nodes and the table -------------------------------------------------------------------- */

static inline Py_ssize_t home(uint64_t h, const Table *t)
{
    return (Py_ssize_t)((h * GOLDEN) >> (64 - t->bits));
}

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

static void table_place(Table *t, uint64_t h, void *n)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t);
    while (t->slots[i].node != NULL) {
        i = (i + 1) & mask;
    }
    t->slots[i].hash = h;
    t->slots[i].node = n;
    t->used++;
}

/* Make room for one more entry; -1 with MemoryError set. No Python code runs. */
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
        if (t->slots[i].node != NULL) {
            table_place(&bigger, t->slots[i].hash, t->slots[i].node);
        }
    }
    PyMem_Free(t->slots);
    *t = bigger;
    return 0;
}

static void table_remove(Table *t, void *n, uint64_t h)
{
    Slot *slots = t->slots;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t);
    while (slots[i].node != n) {
        i = (i + 1) & mask;
    }
    Py_ssize_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (slots[j].node == NULL) {
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
    slots[i].node = NULL;
    t->used--;
}

/* Find ``key``: 1 found (*out), 0 absent, -1 an exception from ==. */
static int lookup(ARC *self, PyObject *key, uint64_t h, Node **out)
{
    Table *t = &self->keys;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(h, t);
    for (;;) {
        Node *n = t->slots[i].node;
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

/* Hash ``key`` and find it: as lookup(), -1 also for an unhashable key. */
static int find(ARC *self, PyObject *key, uint64_t *h, Node **out)
{
    Py_hash_t hh = PyObject_Hash(key);
    if (hh == -1) {
        return -1;
    }
    *h = (uint64_t)hh;
    return lookup(self, key, *h, out);
}

/* A new node for ``key`` at the MRU end of ``list`` (room reserved by the caller). */
static Node *node_new(ARC *self, PyObject *key, uint64_t h, int list)
{
    Node *n = self->freelist;
    if (n != NULL) {
        self->freelist = n->next;
        self->nfree--;
    }
    else {
        n = PyMem_Malloc(sizeof(Node));
        if (n == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    Py_INCREF(key);
    n->key = key;
    n->hash = h;
    n->weight = 1;
    n->list = list;
    l_append(&self->lists[list], n);
    table_place(&self->keys, h, n);
    return n;
}

/* Forget the node entirely; return its key (a strong reference the caller releases). */
static PyObject *node_drop(ARC *self, Node *n)
{
    l_unlink(&self->lists[n->list], n);
    table_remove(&self->keys, n, n->hash);
    PyObject *key = n->key;
    if (self->nfree < FREELIST_MAX) {
        n->next = self->freelist;
        self->freelist = n;
        self->nfree++;
    }
    else {
        PyMem_Free(n);
    }
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
    if (self->keys.slots != NULL) {
        memset(self->keys.slots, 0, ((size_t)1 << self->keys.bits) * sizeof(Slot));
    }
    self->keys.used = 0;
    self->weight = 0;
    while (chain != NULL) {
        Node *next = chain->next;
        PyObject *key = chain->key;
        if (self->nfree < FREELIST_MAX) {
            chain->next = self->freelist;
            self->freelist = chain;
            self->nfree++;
        }
        else {
            PyMem_Free(chain);
        }
        Py_DECREF(key);
        chain = next;
    }
}

/* -- ARC ------------------------------------------------------------------------------------ */

static inline Py_ssize_t n_res(ARC *self) { return self->lists[T1].len + self->lists[T2].len; }

static int enter(ARC *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ARCEngine: re-entrant call (from a key's __hash__ or __eq__)");
        return -1;
    }
    if (self->buf == NULL) { /* reached from a __del__ after the cycle collector's tp_clear */
        PyErr_SetString(PyExc_RuntimeError,
                        "ARCEngine: used after the garbage collector cleared it");
        return -1;
    }
    self->busy = 1;
    return 0;
}

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
    self->weight -= n->weight;
    return PyList_Append(out, n->key);
}

/* _drain: replay the buffered reads (hits only). 0, or -1 with an exception (the reads before
   it are replayed, the rest dropped: Python's list(buf); buf.clear() then a failing `in`). */
static int drain(ARC *self)
{
    Py_ssize_t size = PyObject_Size(self->buf);
    if (size <= 0) {
        return (int)size;
    }
    PyObject *items = PySequence_List(self->buf);
    if (items == NULL) {
        return -1;
    }
    PyObject *r = PyObject_CallMethodNoArgs(self->buf, STR_CLEAR);
    if (r == NULL) {
        Py_DECREF(items);
        return -1;
    }
    Py_DECREF(r);
    Py_ssize_t m = PyList_GET_SIZE(items);
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *k = PyList_GET_ITEM(items, j);
        uint64_t h;
        Node *n;
        int f = find(self, k, &h, &n);
        if (f < 0) {
            Py_DECREF(items);
            return -1;
        }
        if (f && n->list == T1) {
            move_to(self, n, T2);
            take_key(n, k);
        }
        else if (f && n->list == T2) {
            move_to(self, n, T2);
        }
    }
    Py_DECREF(items);
    return 0;
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
    int64_t c = self->c;
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
            if (table_reserve(&self->keys) < 0) {
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
            if (table_reserve(&self->keys) < 0) {
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
        if (table_reserve(&self->keys) < 0) {
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
    return x;
}

/* The resident total after a key's weight goes from ``old`` to ``weight`` (``old`` 0 for a new
key, evictions not counted), or -1 with OverflowError when it leaves int64: checked before any
change, so a refused add() changes nothing. */
static int new_total(const char *who, int64_t total, int64_t old, int64_t weight, int64_t *out)
{
    if (__builtin_sub_overflow(total, old, out) || __builtin_add_overflow(*out, weight, out)) {
        PyErr_Format(PyExc_OverflowError,
                     "%s: the total weight would overflow int64 (total %lld, weight %lld)", who,
                     (long long)total, (long long)weight);
        return -1;
    }
    return 0;
}

/* add's body after the drain; ``simulate``: access(x), a simulation step that keeps no weights
(Python's access() leaves ``wt`` and ``weight`` alone; a new key shows weight 1 in order(), as
Python's wt.get(k, 1)). */
static PyObject *do_add(ARC *self, PyObject *key, int64_t weight, int simulate)
{
    uint64_t h;
    Node *n;
    int f = find(self, key, &h, &n);
    if (f < 0) {
        return NULL;
    }
    int64_t total;
    if (!simulate && new_total("ARCEngine.add", self->weight,
                               f && n->list <= T2 ? n->weight : 0, weight, &total) < 0) {
        return NULL;
    }
    if (f && n->list <= T2) {
        hit(self, n, key);
        if (simulate) {
            Py_RETURN_TRUE;
        }
        self->weight += weight - n->weight;
        n->weight = weight;
        return PyList_New(0);
    }
    if (simulate) {
        Node *x = insert(self, key, h, f ? n : NULL, NULL);
        if (x == NULL) {
            return NULL;
        }
        x->weight = 1;
        Py_RETURN_FALSE;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Node *x = insert(self, key, h, f ? n : NULL, out);
    if (x == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    x->weight = weight;
    self->weight += weight;
    return out;
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

/* An owned tuple copy of a sequence argument: load() and prepend() run keys' __hash__ and __eq__,
 * which may mutate the caller's list, so they must never read its items through borrowed
 * pointers (PySequence_Fast_ITEMS of a list). */
static PyObject *owned_items(PyObject *obj, const char *msg)
{
    PyObject *seq = PySequence_Fast(obj, msg);
    if (seq == NULL) {
        return NULL;
    }
    PyObject *tup = PySequence_Tuple(seq);
    Py_DECREF(seq);
    return tup;
}

static int parse_capacity(PyObject *v, int64_t *out)
{
    if (!PyLong_Check(v) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "ARCEngine: the capacity must be an int, got %R", v);
        return -1;
    }
    long long c = PyLong_AsLongLong(v);
    if (c == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (c < 0) {
        PyErr_Format(PyExc_ValueError, "ARCEngine: the capacity must be >= 0, got %R", v);
        return -1;
    }
    *out = (int64_t)c;
    return 0;
}

static PyObject *ARC_access(ARC *self, PyObject *key)
{
    if (enter(self) < 0) {
        return NULL;
    }
    PyObject *r = do_add(self, key, 1, 1);
    self->busy = 0;
    return r;
}

static PyObject *ARC_add(ARC *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int64_t w;
    if (parse_weight(args[1], &w) < 0 || enter(self) < 0) {
        return NULL;
    }
    PyObject *r = drain(self) < 0 ? NULL : do_add(self, args[0], w, 0);
    self->busy = 0;
    return r;
}

static PyObject *ARC_drain(ARC *self, PyObject *Py_UNUSED(ignored))
{
    if (enter(self) < 0) {
        return NULL;
    }
    int r = drain(self);
    self->busy = 0;
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *ARC_remove(ARC *self, PyObject *key)
{
    if (enter(self) < 0) {
        return NULL;
    }
    uint64_t h;
    Node *n = NULL;
    int f = drain(self);
    if (f == 0) {
        f = find(self, key, &h, &n);
    }
    PyObject *dropped = NULL;
    if (f > 0 && n->list <= T2) {
        self->weight -= n->weight;
        dropped = node_drop(self, n);
    }
    self->busy = 0;
    Py_XDECREF(dropped);
    if (f < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *ARC_clear(ARC *self, PyObject *Py_UNUSED(ignored))
{
    if (enter(self) < 0) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethodNoArgs(self->buf, STR_CLEAR);
    if (r == NULL) {
        self->busy = 0;
        return NULL;
    }
    Py_DECREF(r);
    self->p = 0.0;
    forget_all(self); /* runs no Python code before the engine is empty; busy until done */
    self->busy = 0;
    Py_RETURN_NONE;
}

static PyObject *ARC_resize(ARC *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "resize() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (enter(self) < 0) {
        return NULL;
    }
    if (drain(self) < 0) {
        self->busy = 0;
        return NULL;
    }
    if (args[0] == Py_None || args[1] != Py_None) {
        self->busy = 0;
        PyErr_Format(PyExc_AssertionError,
                     "ARCEngine.resize: needs an entry bound and no weight bound, got %R, %R",
                     args[0], args[1]);
        return NULL;
    }
    int64_t c;
    if (parse_capacity(args[0], &c) < 0) {
        self->busy = 0;
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        self->busy = 0;
        return NULL;
    }
    self->c = c;
    if ((double)c < self->p) {
        self->p = (double)c;
    }
    while (n_res(self) > c) {
        if (victim(self, replace(self, 0), out) < 0) {
            Py_CLEAR(out);
            break;
        }
    }
    List *b1 = &self->lists[B1], *b2 = &self->lists[B2];
    while (out != NULL && b1->len + b2->len > c) {
        PyObject *k = node_drop(self, l_first(b1->len >= b2->len ? b1 : b2));
        Py_DECREF(k); /* the structure is consistent: a __del__ that calls in sees it */
    }
    self->busy = 0;
    return out;
}

static PyObject *ARC_order(ARC *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    for (int l = T1; l <= T2; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != &lst->head; n = n->next) {
            PyObject *t = Py_BuildValue("(OL)", n->key, (long long)n->weight);
            if (t == NULL || PyList_Append(out, t) < 0) {
                Py_XDECREF(t);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(t);
        }
    }
    return out;
}

static PyObject *ARC_lists(ARC *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyTuple_New(4);
    if (out == NULL) {
        return NULL;
    }
    for (int l = 0; l < 4; l++) {
        List *lst = &self->lists[l];
        PyObject *keys = PyList_New(lst->len);
        if (keys == NULL) {
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
    return out;
}

static PyObject *ARC_load(ARC *self, PyObject *items)
{
    PyObject *seq = owned_items(items, "ARCEngine.load: items must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    if (self->keys.used) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError,
                     "ARCEngine.load: the engine must be empty, it knows %zd keys",
                     self->keys.used);
        return NULL;
    }
    if (enter(self) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(seq);
    int ok = 0;
    PyObject *k = NULL, *w = NULL; /* strong: a key's __hash__/__eq__ may empty a list pair */
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *pair = PyTuple_GET_ITEM(seq, j);
        int64_t wv;
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "ARCEngine.load: items must be (key, weight) pairs, got %R", pair);
            goto done;
        }
        k = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 0));
        w = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 1));
        uint64_t h;
        Node *n;
        int f;
        if (parse_weight(w, &wv) < 0 || (f = find(self, k, &h, &n)) < 0) {
            goto done;
        }
        if (f) {
            PyErr_Format(PyExc_ValueError, "ARCEngine.load: key %R appears twice", k);
            goto done;
        }
        int64_t total;
        if (new_total("ARCEngine.load", self->weight, 0, wv, &total) < 0) {
            goto done;
        }
        if (table_reserve(&self->keys) < 0 || (n = node_new(self, k, h, T2)) == NULL) {
            goto done;
        }
        n->weight = wv;
        self->weight += wv;
        Py_CLEAR(k);
        Py_CLEAR(w);
    }
    ok = 1;
done:
    Py_XDECREF(k);
    Py_XDECREF(w);
    if (!ok) {
        forget_all(self); /* an engine that was empty stays empty */
    }
    self->busy = 0;
    Py_DECREF(seq);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *ARC_prepend(ARC *self, PyObject *keys)
{
    PyObject *seq = owned_items(keys, "ARCEngine.prepend: keys must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    if (enter(self) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(seq);
    int ok = 0;
    int64_t total; /* each key adds weight 1: refuse up front what could overflow */
    if (new_total("ARCEngine.prepend", self->weight, 0, (int64_t)m, &total) < 0) {
        goto done;
    }
    for (Py_ssize_t j = m - 1; j >= 0; j--) {
        PyObject *k = PyTuple_GET_ITEM(seq, j); /* the owned tuple holds it */
        uint64_t h;
        Node *n;
        int f = find(self, k, &h, &n);
        if (f < 0) {
            goto done;
        }
        if (f && n->list <= T2) {
            PyErr_Format(PyExc_ValueError, "ARCEngine.prepend: key %R is resident already", k);
            goto done;
        }
        if (f) {
            l_unlink(&self->lists[n->list], n);
            n->list = T1;
            l_prepend(&self->lists[T1], n);
            take_key(n, k);
        }
        else {
            if (table_reserve(&self->keys) < 0 || (n = node_new(self, k, h, T1)) == NULL) {
                goto done;
            }
            l_unlink(&self->lists[T1], n);
            l_prepend(&self->lists[T1], n);
        }
        n->weight = 1;
        self->weight += 1;
    }
    ok = 1;
done:
    self->busy = 0;
    Py_DECREF(seq);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* -- type ----------------------------------------------------------------------------------- */

static PyObject *ARC_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"c", "buf", NULL};
    PyObject *cap, *buf = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:ARCEngine", kwlist, &cap, &buf)) {
        return NULL;
    }
    int64_t c;
    if (parse_capacity(cap, &c) < 0) {
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
    ARC *self = (ARC *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(buf);
        return NULL;
    }
    for (int l = 0; l < 4; l++) {
        l_init(&self->lists[l]);
    }
    self->buf = buf;
    self->c = c;
    if (table_init(&self->keys, 4) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int ARC_traverse(ARC *self, visitproc visit, void *arg)
{
    for (int l = 0; l < 4; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != NULL && n != &lst->head; n = n->next) {
            Py_VISIT(n->key);
        }
    }
    Py_VISIT(self->buf);
    return 0;
}

static int ARC_tp_clear(ARC *self)
{
    if (self->lists[0].head.next != NULL) {
        forget_all(self);
    }
    Py_CLEAR(self->buf);
    return 0;
}

static void ARC_dealloc(ARC *self)
{
    PyObject_GC_UnTrack(self);
    ARC_tp_clear(self);
    PyMem_Free(self->keys.slots);
    while (self->freelist != NULL) {
        Node *next = self->freelist->next;
        PyMem_Free(self->freelist);
        self->freelist = next;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t ARC_len(ARC *self) { return n_res(self); }

static int ARC_contains(ARC *self, PyObject *key)
{
    uint64_t h;
    Node *n;
    int was_busy = self->busy;
    self->busy = 1;
    Py_INCREF(key);
    int f = find(self, key, &h, &n);
    Py_DECREF(key);
    self->busy = was_busy;
    if (f <= 0) {
        return f;
    }
    return n->list <= T2;
}

static PyObject *ARC_get_weight(ARC *self, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(self->weight);
}

static PyObject *ARC_get_c(ARC *self, void *Py_UNUSED(c)) { return PyLong_FromLongLong(self->c); }

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
    if (!(d >= 0.0 && d <= (double)self->c)) {
        PyErr_Format(PyExc_ValueError, "ARCEngine.p must be in [0, c=%lld], got %R",
                     (long long)self->c, v);
        return -1;
    }
    self->p = d;
    return 0;
}

static PyObject *ARC_get_buf(ARC *self, void *Py_UNUSED(c))
{
    if (self->buf == NULL) { /* reached from a __del__ after the cycle collector's tp_clear */
        PyErr_SetString(PyExc_RuntimeError,
                        "ARCEngine: used after the garbage collector cleared it");
        return NULL;
    }
    Py_INCREF(self->buf);
    return self->buf;
}

static int ARC_set_buf(ARC *self, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL || !PyObject_TypeCheck(v, (PyTypeObject *)DequeType)) {
        PyErr_Format(PyExc_TypeError, "ARCEngine._buf must be a collections.deque, got %R",
                     v == NULL ? Py_None : v);
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "ARCEngine: re-entrant call");
        return -1;
    }
    if (self->buf == NULL) { /* cleared by the cycle collector: the engine stays unusable */
        PyErr_SetString(PyExc_RuntimeError,
                        "ARCEngine: used after the garbage collector cleared it");
        return -1;
    }
    Py_INCREF(v);
    Py_SETREF(self->buf, v);
    return 0;
}

static PyGetSetDef ARC_getset[] = {
    {"weight", (getter)ARC_get_weight, NULL, "The sum of the resident keys' weights.", NULL},
    {"c", (getter)ARC_get_c, NULL, "The capacity in entries.", NULL},
    {"max_entries", (getter)ARC_get_c, NULL, "The capacity in entries (as c).", NULL},
    {"p", (getter)ARC_get_p, (setter)ARC_set_p, "ARC's target size of T1 (a float in [0, c]).",
     NULL},
    {"_buf", (getter)ARC_get_buf, (setter)ARC_set_buf, "The read buffer (a deque).", NULL},
    {NULL},
};

/* A new empty engine of ``type`` with capacity ``c`` on the read buffer ``buf`` (None: a new
   deque). New reference, or NULL with an exception. */
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

static PyObject *ARC_copy(ARC *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "copy() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    PyObject *buf = new_buffer(nargs ? args[0] : Py_None);
    if (buf == NULL) {
        return NULL;
    }
    ARC *o = (ARC *)Py_TYPE(self)->tp_alloc(Py_TYPE(self), 0);
    if (o == NULL) {
        Py_DECREF(buf);
        return NULL;
    }
    for (int l = 0; l < 4; l++) {
        l_init(&o->lists[l]);
    }
    o->buf = buf;
    o->c = self->c;
    o->p = self->p;
    o->weight = self->weight;
    if (table_init(&o->keys, self->keys.bits) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    for (int l = 0; l < 4; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != &lst->head; n = n->next) {
            Node *m = node_new(o, n->key, n->hash, l); /* the same bits: room for all */
            if (m == NULL) {
                Py_DECREF(o);
                return NULL;
            }
            m->weight = n->weight;
        }
    }
    return (PyObject *)o;
}

static PyObject *ARC_set_weights(ARC *self, PyObject *mapping)
{
    if (!PyDict_Check(mapping)) {
        PyErr_Format(PyExc_TypeError, "ARCEngine.set_weights: needs a dict, got %R", mapping);
        return NULL;
    }
    if (enter(self) < 0) {
        return NULL;
    }
    /* read every new weight first, commit only when all are good: no half-set weights */
    Py_ssize_t m = n_res(self);
    int64_t *ws = PyMem_Malloc((size_t)(m > 0 ? m : 1) * sizeof(int64_t));
    if (ws == NULL) {
        self->busy = 0;
        return PyErr_NoMemory();
    }
    int64_t total = 0;
    Py_ssize_t j = 0;
    for (int l = T1; l <= T2; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != &lst->head; n = n->next, j++) {
            if (weight_of(mapping, n->key, &ws[j]) < 0) {
                goto fail;
            }
            if (__builtin_add_overflow(total, ws[j], &total)) {
                PyErr_SetString(PyExc_OverflowError,
                                "ARCEngine.set_weights: the total weight overflows int64");
                goto fail;
            }
        }
    }
    j = 0;
    for (int l = T1; l <= T2; l++) {
        List *lst = &self->lists[l];
        for (Node *n = lst->head.next; n != &lst->head; n = n->next) {
            n->weight = ws[j++];
        }
    }
    PyMem_Free(ws);
    self->weight = total;
    self->busy = 0;
    Py_RETURN_NONE;
fail:
    PyMem_Free(ws);
    self->busy = 0;
    return NULL;
}

static PyMethodDef ARC_methods[] = {
    {"access", (PyCFunction)ARC_access, METH_O,
     "Simulate one read-or-insert of ``x``; return True on a hit."},
    {"add", (PyCFunction)(void (*)(void))ARC_add, METH_FASTCALL,
     "Insert or touch ``key`` with ``weight``; return the evicted keys."},
    {"update", (PyCFunction)(void (*)(void))ARC_add, METH_FASTCALL,
     "As add(): record a new weight for ``key``; return the evicted keys."},
    {"remove", (PyCFunction)ARC_remove, METH_O, "Forget the resident ``key`` (ghosts stay)."},
    {"clear", (PyCFunction)ARC_clear, METH_NOARGS, "Forget every key and the buffered reads."},
    {"resize", (PyCFunction)(void (*)(void))ARC_resize, METH_FASTCALL,
     "Change the capacity to ``max_entries``; return the evicted keys."},
    {"order", (PyCFunction)ARC_order, METH_NOARGS,
     "Return the resident (key, weight) pairs, least valuable first (T1, then T2)."},
    {"load", (PyCFunction)ARC_load, METH_O,
     "Fill an empty engine with (key, weight) items (least valuable first) into T2."},
    {"prepend", (PyCFunction)ARC_prepend, METH_O,
     "Make ``keys`` (least valuable first) resident at T1's LRU end, weight 1."},
    {"_drain", (PyCFunction)ARC_drain, METH_NOARGS, "Replay the buffered reads."},
    {"copy", (PyCFunction)(void (*)(void))ARC_copy, METH_FASTCALL,
     "Return a copy (the same key objects) on the read buffer ``buf`` (default: a new deque)."},
    {"set_weights", (PyCFunction)ARC_set_weights, METH_O,
     "Set every resident key's weight to ``mapping.get(key, 1)`` (a dict)."},
    {"_lists", (PyCFunction)ARC_lists, METH_NOARGS,
     "Return the keys of T1, T2, B1 and B2, each LRU first (for tests)."},
    {NULL},
};

static PySequenceMethods ARC_as_sequence = {
    .sq_length = (lenfunc)ARC_len,
    .sq_contains = (objobjproc)ARC_contains,
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
    struct LNode *sprev;
    struct LNode *snext;
    struct LNode *oprev;
    struct LNode *onext;
    PyObject *skey; /* strong; NULL: not on the stack */
    PyObject *okey; /* strong; NULL: in neither q nor nonres */
    uint64_t hash;
    int64_t weight;
    int state;
    int olist; /* 0, OQ or ONR */
} LNode;

typedef struct {
    LNode head;
    Py_ssize_t len;
} LList;

typedef struct {
    PyObject_HEAD
    LList s;  /* the LIRS stack: head.snext is the bottom, head.sprev the top */
    LList q;  /* resident HIR keys: head.onext is the victim */
    LList nr; /* non-resident keys, oldest first */
    Table keys;
    int64_t c;
    int64_t l_hirs;
    int64_t l_lirs;
    int64_t n_lir;
    int64_t n_res;
    int64_t weight;
    PyObject *buf;
    int busy;
    PyObject **dead;
    Py_ssize_t ndead;
    Py_ssize_t adead;
    LNode *freelist;
    int nfree;
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
    LNode *n = self->freelist;
    if (n != NULL) {
        self->freelist = n->snext;
        self->nfree--;
    }
    else {
        n = PyMem_Malloc(sizeof(LNode));
        if (n == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    n->skey = n->okey = NULL;
    n->hash = h;
    n->weight = 1;
    n->state = HIR;
    n->olist = 0;
    table_place(&self->keys, h, n);
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
    table_remove(&self->keys, n, n->hash);
    if (self->nfree < FREELIST_MAX) {
        n->snext = self->freelist;
        self->freelist = n;
        self->nfree++;
    }
    else {
        PyMem_Free(n);
    }
}

/* 1 if the node ``n`` (maybe freed: never dereferenced) is still in the table under ``h``. */
static int table_has(Table *t, uint64_t h, void *n)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    for (Py_ssize_t i = home(h, t); t->slots[i].node != NULL; i = (i + 1) & mask) {
        if (t->slots[i].node == n) {
            return 1;
        }
    }
    return 0;
}

static int lfind(LIRS *self, PyObject *key, uint64_t *hp, LNode **out)
{
    Py_hash_t hh = PyObject_Hash(key);
    if (hh == -1) {
        return -1;
    }
    uint64_t h = (uint64_t)hh;
    *hp = h;
    Table *t = &self->keys;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    for (Py_ssize_t i = home(h, t);; i = (i + 1) & mask) {
        LNode *n = t->slots[i].node;
        if (n == NULL) {
            *out = NULL;
            return 0;
        }
        if (t->slots[i].hash == h) {
            PyObject *k = n->skey != NULL ? n->skey : n->okey;
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
    }
}

static void lirs_size(LIRS *self, int64_t c)
{
    self->c = c;
    self->l_hirs = c > 1 ? (int64_t)((double)c * 0.01) : 0;
    if (c > 1 && self->l_hirs < 1) {
        self->l_hirs = 1;
    }
    self->l_lirs = c - self->l_hirs;
}

static int lenter(LIRS *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "LIRSEngine: re-entrant call (from a key's __hash__ or __eq__)");
        return -1;
    }
    if (self->buf == NULL) { /* reached from a __del__ after the cycle collector's tp_clear */
        PyErr_SetString(PyExc_RuntimeError,
                        "LIRSEngine: used after the garbage collector cleared it");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static inline void lleave(LIRS *self)
{
    self->busy = 0;
    flush(self);
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
        self->weight -= n->weight;
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
    if (table_reserve(&self->keys) < 0) {
        return NULL;
    }
    if (self->n_lir < self->l_lirs && (self->n_res < self->c || self->q.len)) {
        if (self->n_res >= self->c && evict_hir(self, out) < 0) {
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
    while (self->n_res >= self->c && self->n_res > 0) {
        if (self->q.len == 0 && demote_bottom_lir(self) < 0) {
            return NULL;
        }
        if (evict_hir(self, out) < 0) {
            return NULL;
        }
    }
    self->n_res++;
    if (n != NULL && !table_has(&self->keys, h, n)) {
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
    int64_t lim = NONRES_FACTOR * self->c > NONRES_MIN ? NONRES_FACTOR * self->c : NONRES_MIN;
    if (self->nr.len > lim + 16) {
        /* bound the history: forget the oldest non-resident keys */
        for (int64_t j = self->nr.len - lim; j > 0; j--) {
            lnode_drop(self, o_first(&self->nr));
        }
    }
    return n;
}

static PyObject *lirs_do_add(LIRS *self, PyObject *key, int64_t weight, int simulate)
{
    uint64_t h;
    LNode *n;
    int f = lfind(self, key, &h, &n);
    if (f < 0) {
        return NULL;
    }
    int64_t total;
    if (!simulate && new_total("LIRSEngine.add", self->weight,
                               f && n->state != NONRES ? n->weight : 0, weight, &total) < 0) {
        return NULL;
    }
    if (f && n->state != NONRES) {
        if (lhit(self, n, key) < 0) {
            return NULL;
        }
        if (simulate) {
            Py_RETURN_TRUE;
        }
        self->weight += weight - n->weight;
        n->weight = weight;
        return PyList_New(0);
    }
    if (simulate) {
        n = linsert(self, key, h, f ? n : NULL, NULL);
        if (n == NULL) {
            return NULL;
        }
        n->weight = 1;
        Py_RETURN_FALSE;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    n = linsert(self, key, h, f ? n : NULL, out);
    if (n == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    n->weight = weight;
    self->weight += weight;
    return out;
}

static int lirs_drain(LIRS *self)
{
    Py_ssize_t size = PyObject_Size(self->buf);
    if (size <= 0) {
        return (int)size;
    }
    PyObject *items = PySequence_List(self->buf);
    if (items == NULL) {
        return -1;
    }
    PyObject *r = PyObject_CallMethodNoArgs(self->buf, STR_CLEAR);
    if (r == NULL) {
        Py_DECREF(items);
        return -1;
    }
    Py_DECREF(r);
    Py_ssize_t m = PyList_GET_SIZE(items);
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *k = PyList_GET_ITEM(items, j);
        uint64_t h;
        LNode *n;
        int f = lfind(self, k, &h, &n);
        if (f < 0 || (f && n->state != NONRES && lhit(self, n, k) < 0)) {
            Py_DECREF(items);
            return -1;
        }
    }
    defer(self, items);
    return 0;
}

static PyObject *LIRS_access(LIRS *self, PyObject *key)
{
    if (lenter(self) < 0) {
        return NULL;
    }
    PyObject *r = lirs_do_add(self, key, 1, 1);
    lleave(self);
    return r;
}

static PyObject *LIRS_add(LIRS *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "add() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int64_t w;
    if (parse_weight(args[1], &w) < 0 || lenter(self) < 0) {
        return NULL;
    }
    PyObject *r = lirs_drain(self) < 0 ? NULL : lirs_do_add(self, args[0], w, 0);
    lleave(self);
    return r;
}

static PyObject *LIRS_drain(LIRS *self, PyObject *Py_UNUSED(ignored))
{
    if (lenter(self) < 0) {
        return NULL;
    }
    int r = lirs_drain(self);
    lleave(self);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *LIRS_remove(LIRS *self, PyObject *key)
{
    if (lenter(self) < 0) {
        return NULL;
    }
    uint64_t h;
    LNode *n = NULL;
    int f = lirs_drain(self);
    if (f == 0) {
        f = lfind(self, key, &h, &n);
    }
    if (f > 0 && n->state != NONRES) {
        self->weight -= n->weight;
        if (n->state == LIR) {
            self->n_lir--;
        }
        lnode_drop(self, n);
        self->n_res--;
        lprune(self);
    }
    lleave(self);
    if (f < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static void lforget_all(LIRS *self)
{
    Table *t = &self->keys;
    Py_ssize_t size = t->slots != NULL ? (Py_ssize_t)1 << t->bits : 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        LNode *n = t->slots[i].node;
        if (n == NULL) {
            continue;
        }
        t->slots[i].node = NULL;
        if (n->skey != NULL) {
            defer(self, n->skey);
        }
        if (n->okey != NULL) {
            defer(self, n->okey);
        }
        if (self->nfree < FREELIST_MAX) {
            n->snext = self->freelist;
            self->freelist = n;
            self->nfree++;
        }
        else {
            PyMem_Free(n);
        }
    }
    t->used = 0;
    ll_init(&self->s);
    ll_init(&self->q);
    ll_init(&self->nr);
    self->n_lir = self->n_res = self->weight = 0;
}

static PyObject *LIRS_clear(LIRS *self, PyObject *Py_UNUSED(ignored))
{
    if (lenter(self) < 0) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethodNoArgs(self->buf, STR_CLEAR);
    if (r != NULL) {
        Py_DECREF(r);
        lforget_all(self);
    }
    lleave(self);
    if (r == NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *LIRS_resize(LIRS *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "resize() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (lenter(self) < 0) {
        return NULL;
    }
    PyObject *out = NULL;
    int64_t c;
    if (lirs_drain(self) < 0) {
        goto done;
    }
    if (args[0] == Py_None || args[1] != Py_None) {
        PyErr_Format(PyExc_AssertionError,
                     "LIRSEngine.resize: needs an entry bound and no weight bound, got %R, %R",
                     args[0], args[1]);
        goto done;
    }
    if (parse_capacity(args[0], &c) < 0 || (out = PyList_New(0)) == NULL) {
        goto done;
    }
    lirs_size(self, c);
    while (self->n_lir > self->l_lirs) {
        if (demote_bottom_lir(self) < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
    while (self->n_res > self->c) {
        if ((self->q.len == 0 && demote_bottom_lir(self) < 0) || evict_hir(self, out) < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    lleave(self);
    return out;
}

static int append_pair(PyObject *out, PyObject *key, int64_t w)
{
    PyObject *t = Py_BuildValue("(OL)", key, (long long)w);
    if (t == NULL) {
        return -1;
    }
    int r = PyList_Append(out, t);
    Py_DECREF(t);
    return r;
}

static PyObject *LIRS_order(LIRS *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    for (LNode *n = self->q.head.onext; n != &self->q.head; n = n->onext) {
        if (append_pair(out, n->okey, n->weight) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    for (LNode *n = self->s.head.snext; n != &self->s.head; n = n->snext) {
        if (n->state == LIR && append_pair(out, n->skey, n->weight) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *LIRS_lists(LIRS *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *s = PyList_New(0), *q = PyList_New(0), *nr = PyList_New(0), *st = PyDict_New();
    PyObject *pairs = NULL;
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
    Py_ssize_t size = (Py_ssize_t)1 << self->keys.bits;
    pairs = PyList_New(0);
    if (pairs == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; self->keys.slots != NULL && i < size; i++) {
        LNode *n = self->keys.slots[i].node;
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
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i); /* pairs is ours alone: no one mutates it */
        if (PyDict_SetItem(st, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) {
            goto fail;
        }
    }
    Py_DECREF(pairs);
    return Py_BuildValue("(NNNN)", s, q, nr, st);
fail:
    Py_XDECREF(pairs);
    Py_XDECREF(s);
    Py_XDECREF(q);
    Py_XDECREF(nr);
    Py_XDECREF(st);
    return NULL;
}

static PyObject *LIRS_load(LIRS *self, PyObject *items)
{
    PyObject *seq = owned_items(items, "LIRSEngine.load: items must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    if (self->keys.used) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError,
                     "LIRSEngine.load: the engine must be empty, it knows %zd keys",
                     self->keys.used);
        return NULL;
    }
    if (lenter(self) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(seq);
    int64_t n_hir = m - self->l_lirs > 0 ? m - self->l_lirs : 0;
    int ok = 0;
    PyObject *k = NULL, *w = NULL; /* strong: a key's __hash__/__eq__ may empty a list pair */
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *pair = PyTuple_GET_ITEM(seq, j);
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "LIRSEngine.load: items must be (key, weight) pairs, got %R", pair);
            goto done;
        }
        k = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 0));
        w = Py_NewRef(PySequence_Fast_GET_ITEM(pair, 1));
        int64_t wv;
        uint64_t h;
        LNode *n;
        int f;
        if (parse_weight(w, &wv) < 0 || (f = lfind(self, k, &h, &n)) < 0) {
            goto done;
        }
        if (f) {
            PyErr_Format(PyExc_ValueError, "LIRSEngine.load: key %R appears twice", k);
            goto done;
        }
        int64_t total;
        if (new_total("LIRSEngine.load", self->weight, 0, wv, &total) < 0) {
            goto done;
        }
        if (table_reserve(&self->keys) < 0 || (n = lnode_new(self, h)) == NULL) {
            goto done;
        }
        n->weight = wv;
        self->weight += wv;
        self->n_res++;
        if (j < n_hir) {
            n->state = HIR;
            Py_INCREF(k);
            o_append_steal(self, n, OQ, k);
        }
        else {
            n->state = LIR;
            s_append(self, n, k);
            self->n_lir++;
        }
        Py_CLEAR(k);
        Py_CLEAR(w);
    }
    ok = 1;
done:
    Py_XDECREF(k);
    Py_XDECREF(w);
    if (!ok) {
        lforget_all(self); /* an engine that was empty stays empty */
    }
    lleave(self);
    Py_DECREF(seq);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *LIRS_prepend(LIRS *self, PyObject *keys)
{
    PyObject *seq = owned_items(keys, "LIRSEngine.prepend: keys must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    if (lenter(self) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PyTuple_GET_SIZE(seq);
    int ok = 0;
    int64_t total; /* each key adds weight 1: refuse up front what could overflow */
    if (new_total("LIRSEngine.prepend", self->weight, 0, (int64_t)m, &total) < 0) {
        goto done;
    }
    for (Py_ssize_t j = m - 1; j >= 0; j--) {
        PyObject *k = PyTuple_GET_ITEM(seq, j); /* the owned tuple holds it */
        uint64_t h;
        LNode *n;
        int f = lfind(self, k, &h, &n);
        if (f < 0) {
            goto done;
        }
        if (f && n->state != NONRES) {
            PyErr_Format(PyExc_ValueError, "LIRSEngine.prepend: key %R is resident already", k);
            goto done;
        }
        if (f) {
            /* out of the stack, a hit does not make it LIR over the simulated LIR keys */
            o_remove(self, n);
            s_remove(self, n);
        }
        else if (table_reserve(&self->keys) < 0 || (n = lnode_new(self, h)) == NULL) {
            goto done;
        }
        n->state = HIR;
        Py_INCREF(k);
        n->okey = k;
        n->olist = OQ;
        o_link_front(&self->q, n);
        n->weight = 1;
        self->weight += 1;
        self->n_res++;
    }
    ok = 1;
done:
    lleave(self);
    Py_DECREF(seq);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *LIRS_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"c", "buf", NULL};
    PyObject *cap, *buf = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:LIRSEngine", kwlist, &cap, &buf)) {
        return NULL;
    }
    int64_t c;
    if (parse_capacity(cap, &c) < 0) {
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
    LIRS *self = (LIRS *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(buf);
        return NULL;
    }
    ll_init(&self->s);
    ll_init(&self->q);
    ll_init(&self->nr);
    self->buf = buf;
    lirs_size(self, c);
    if (table_init(&self->keys, 4) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int LIRS_traverse(LIRS *self, visitproc visit, void *arg)
{
    Table *t = &self->keys;
    Py_ssize_t size = t->slots != NULL ? (Py_ssize_t)1 << t->bits : 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        LNode *n = t->slots[i].node;
        if (n != NULL) {
            Py_VISIT(n->skey);
            Py_VISIT(n->okey);
        }
    }
    for (Py_ssize_t j = 0; j < self->ndead; j++) {
        Py_VISIT(self->dead[j]);
    }
    Py_VISIT(self->buf);
    return 0;
}

static int LIRS_tp_clear(LIRS *self)
{
    lforget_all(self);
    Py_CLEAR(self->buf);
    flush(self);
    return 0;
}

static void LIRS_dealloc(LIRS *self)
{
    PyObject_GC_UnTrack(self);
    LIRS_tp_clear(self);
    PyMem_Free(self->keys.slots);
    PyMem_Free(self->dead);
    while (self->freelist != NULL) {
        LNode *next = self->freelist->snext;
        PyMem_Free(self->freelist);
        self->freelist = next;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t LIRS_len(LIRS *self) { return (Py_ssize_t)self->n_res; }

static int LIRS_contains(LIRS *self, PyObject *key)
{
    uint64_t h;
    LNode *n;
    int was_busy = self->busy;
    self->busy = 1;
    Py_INCREF(key);
    int f = lfind(self, key, &h, &n);
    Py_DECREF(key);
    self->busy = was_busy;
    if (f <= 0) {
        return f;
    }
    return n->state != NONRES;
}

static PyObject *LIRS_get_int(LIRS *self, void *field)
{
    return PyLong_FromLongLong(*(int64_t *)((char *)self + (size_t)field));
}

static PyObject *LIRS_get_buf(LIRS *self, void *Py_UNUSED(c))
{
    if (self->buf == NULL) { /* reached from a __del__ after the cycle collector's tp_clear */
        PyErr_SetString(PyExc_RuntimeError,
                        "LIRSEngine: used after the garbage collector cleared it");
        return NULL;
    }
    Py_INCREF(self->buf);
    return self->buf;
}

static int LIRS_set_buf(LIRS *self, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL || !PyObject_TypeCheck(v, (PyTypeObject *)DequeType)) {
        PyErr_Format(PyExc_TypeError, "LIRSEngine._buf must be a collections.deque, got %R",
                     v == NULL ? Py_None : v);
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "LIRSEngine: re-entrant call");
        return -1;
    }
    if (self->buf == NULL) { /* cleared by the cycle collector: the engine stays unusable */
        PyErr_SetString(PyExc_RuntimeError,
                        "LIRSEngine: used after the garbage collector cleared it");
        return -1;
    }
    Py_INCREF(v);
    Py_SETREF(self->buf, v);
    return 0;
}

#define LIRS_INT(name, doc)                                                                     \
    {#name, (getter)LIRS_get_int, NULL, doc, (void *)offsetof(LIRS, name)}

static PyGetSetDef LIRS_getset[] = {
    LIRS_INT(weight, "The sum of the resident keys' weights."),
    LIRS_INT(c, "The capacity in entries."),
    {"max_entries", (getter)LIRS_get_int, NULL, "The capacity in entries (as c).",
     (void *)offsetof(LIRS, c)},
    LIRS_INT(l_hirs, "The HIR share: max(1, 1% of c), 0 for c <= 1."),
    LIRS_INT(l_lirs, "The LIR set's target size: c - l_hirs."),
    LIRS_INT(n_lir, "The number of LIR keys."),
    LIRS_INT(n_res, "The number of resident keys."),
    {"_buf", (getter)LIRS_get_buf, (setter)LIRS_set_buf, "The read buffer (a deque).", NULL},
    {NULL},
};

/* The copy's node of the source's node ``n``: the same slot index (the tables are identical). */
static LNode *twin_of(Table *src, Table *dst, LNode *n)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << src->bits) - 1;
    Py_ssize_t i = home(n->hash, src);
    while (src->slots[i].node != n) {
        i = (i + 1) & mask;
    }
    return dst->slots[i].node;
}

static PyObject *LIRS_copy(LIRS *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "copy() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    PyObject *buf = new_buffer(nargs ? args[0] : Py_None);
    if (buf == NULL) {
        return NULL;
    }
    LIRS *o = (LIRS *)Py_TYPE(self)->tp_alloc(Py_TYPE(self), 0);
    if (o == NULL) {
        Py_DECREF(buf);
        return NULL;
    }
    ll_init(&o->s);
    ll_init(&o->q);
    ll_init(&o->nr);
    o->buf = buf;
    if (table_init(&o->keys, self->keys.bits) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    Py_ssize_t size = (Py_ssize_t)1 << self->keys.bits;
    for (Py_ssize_t i = 0; i < size; i++) {
        LNode *n = self->keys.slots[i].node;
        if (n == NULL) {
            continue;
        }
        LNode *m = PyMem_Malloc(sizeof(LNode));
        if (m == NULL) {
            Py_DECREF(o); /* lforget_all frees the nodes placed so far */
            return PyErr_NoMemory();
        }
        *m = *n;
        Py_XINCREF(m->skey);
        Py_XINCREF(m->okey);
        o->keys.slots[i].hash = n->hash;
        o->keys.slots[i].node = m;
        o->keys.used++;
    }
    for (LNode *n = self->s.head.snext; n != &self->s.head; n = n->snext) {
        s_link_end(o, twin_of(&self->keys, &o->keys, n));
    }
    for (LNode *n = self->q.head.onext; n != &self->q.head; n = n->onext) {
        o_link_end(&o->q, twin_of(&self->keys, &o->keys, n));
    }
    for (LNode *n = self->nr.head.onext; n != &self->nr.head; n = n->onext) {
        o_link_end(&o->nr, twin_of(&self->keys, &o->keys, n));
    }
    o->c = self->c;
    o->l_hirs = self->l_hirs;
    o->l_lirs = self->l_lirs;
    o->n_lir = self->n_lir;
    o->n_res = self->n_res;
    o->weight = self->weight;
    return (PyObject *)o;
}

static PyObject *LIRS_set_weights(LIRS *self, PyObject *mapping)
{
    if (!PyDict_Check(mapping)) {
        PyErr_Format(PyExc_TypeError, "LIRSEngine.set_weights: needs a dict, got %R", mapping);
        return NULL;
    }
    if (lenter(self) < 0) {
        return NULL;
    }
    /* read every new weight first, commit only when all are good: no half-set weights */
    Py_ssize_t cap = 1;
    for (LNode *n = self->q.head.onext; n != &self->q.head; n = n->onext) {
        cap++;
    }
    for (LNode *n = self->s.head.snext; n != &self->s.head; n = n->snext) {
        cap += n->state == LIR;
    }
    int64_t *ws = PyMem_Malloc((size_t)cap * sizeof(int64_t));
    if (ws == NULL) {
        lleave(self);
        return PyErr_NoMemory();
    }
    int64_t total = 0;
    Py_ssize_t j = 0;
    int ok = 1;
    for (LNode *n = self->q.head.onext; ok && n != &self->q.head; n = n->onext) {
        ok = weight_of(mapping, n->okey, &ws[j]) == 0;
        if (ok && __builtin_add_overflow(total, ws[j], &total)) {
            ok = 0;
        }
        j++;
    }
    for (LNode *n = self->s.head.snext; ok && n != &self->s.head; n = n->snext) {
        if (n->state == LIR) {
            ok = weight_of(mapping, n->skey, &ws[j]) == 0;
            if (ok && __builtin_add_overflow(total, ws[j], &total)) {
                ok = 0;
            }
            j++;
        }
    }
    if (!ok && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_OverflowError,
                        "LIRSEngine.set_weights: the total weight overflows int64");
    }
    if (ok) {
        j = 0;
        for (LNode *n = self->q.head.onext; n != &self->q.head; n = n->onext) {
            n->weight = ws[j++];
        }
        for (LNode *n = self->s.head.snext; n != &self->s.head; n = n->snext) {
            if (n->state == LIR) {
                n->weight = ws[j++];
            }
        }
        self->weight = total;
    }
    PyMem_Free(ws);
    lleave(self);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef LIRS_methods[] = {
    {"access", (PyCFunction)LIRS_access, METH_O,
     "Simulate one read-or-insert of ``x``; return True on a hit."},
    {"add", (PyCFunction)(void (*)(void))LIRS_add, METH_FASTCALL,
     "Insert or touch ``key`` with ``weight``; return the evicted keys."},
    {"update", (PyCFunction)(void (*)(void))LIRS_add, METH_FASTCALL,
     "As add(): record a new weight for ``key``; return the evicted keys."},
    {"remove", (PyCFunction)LIRS_remove, METH_O, "Forget the resident ``key``."},
    {"clear", (PyCFunction)LIRS_clear, METH_NOARGS, "Forget every key and the buffered reads."},
    {"resize", (PyCFunction)(void (*)(void))LIRS_resize, METH_FASTCALL,
     "Change the capacity to ``max_entries``; return the evicted keys."},
    {"order", (PyCFunction)LIRS_order, METH_NOARGS,
     "Return the resident (key, weight) pairs, least valuable first (HIR, then LIR bottom-up)."},
    {"load", (PyCFunction)LIRS_load, METH_O,
     "Fill an empty engine with (key, weight) items (least valuable first)."},
    {"prepend", (PyCFunction)LIRS_prepend, METH_O,
     "Make ``keys`` (least valuable first) resident HIR keys at the victim end, weight 1."},
    {"_drain", (PyCFunction)LIRS_drain, METH_NOARGS, "Replay the buffered reads."},
    {"copy", (PyCFunction)(void (*)(void))LIRS_copy, METH_FASTCALL,
     "Return a copy (the same key objects) on the read buffer ``buf`` (default: a new deque)."},
    {"set_weights", (PyCFunction)LIRS_set_weights, METH_O,
     "Set every resident key's weight to ``mapping.get(key, 1)`` (a dict)."},
    {"_lists", (PyCFunction)LIRS_lists, METH_NOARGS,
     "Return (stack, q, nonres, {key: state}), each list oldest first (for tests)."},
    {NULL},
};

static PySequenceMethods LIRS_as_sequence = {
    .sq_length = (lenfunc)LIRS_len,
    .sq_contains = (objobjproc)LIRS_contains,
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

static struct PyModuleDef engines_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perflayer.cache._engines_c",
    .m_doc = "C twins of perflayer.cache._policy_adaptive's engines: ARCEngine, LIRSEngine.",
    .m_size = -1,
};

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
    if (STR_CLEAR == NULL) {
        return NULL;
    }
    if (PyType_Ready(&ARCType) < 0) {
        return NULL;
    }
    if (PyType_Ready(&LIRSType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&engines_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ARCType);
    if (PyModule_AddObject(m, "ARCEngine", (PyObject *)&ARCType) < 0) {
        Py_DECREF(&ARCType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&LIRSType);
    if (PyModule_AddObject(m, "LIRSEngine", (PyObject *)&LIRSType) < 0) {
        Py_DECREF(&LIRSType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
