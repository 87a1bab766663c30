/*
 * perflayer.cache._engines_c: C twins of the adaptive policy's engines
 * (perflayer/cache/_policy_adaptive.py; read that module's essay first). So far: ARCEngine, the
 * twin of _ARCEngine (Megiddo and Modha, FAST 2003). For every sequence of calls it returns the
 * same victims in the same order, the same order() and the same ghost lists as the Python class
 * (tests/cache/test_engines_c.py checks it step by step). AdaptivePolicy does not use it yet:
 * the LIRS twin and the adoption path (a copy of a simulation, with its weights replaced) are
 * still to come.
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
 * Where this differs from the Python class (never on AdaptivePolicy's calls):
 * - the capacity is an int >= 0 (a negative or non-int one is a ValueError / TypeError here;
 *   Python fails later with a KeyError from an empty OrderedDict). With capacity 0 an add of a
 *   new key raises KeyError("dictionary is empty") and changes nothing, as Python's does.
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
    Node *node; /* NULL: empty */
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

static void table_place(Table *t, uint64_t h, Node *n)
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

static void table_remove(Table *t, Node *n)
{
    Slot *slots = t->slots;
    Py_ssize_t mask = ((Py_ssize_t)1 << t->bits) - 1;
    Py_ssize_t i = home(n->hash, t);
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
    table_remove(&self->keys, n);
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
    PyObject *r = PyObject_CallMethod(self->buf, "clear", NULL);
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
    PyObject *r = PyObject_CallMethod(self->buf, "clear", NULL);
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
    PyObject *seq = PySequence_Fast(items, "ARCEngine.load: items must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    if (self->keys.used) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "ARCEngine.load: the engine must be empty, it knows %zd keys",
                     self->keys.used);
        return NULL;
    }
    if (enter(self) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    PyObject **it = PySequence_Fast_ITEMS(seq);
    int ok = 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *pair = it[j];
        PyObject *k, *w;
        int64_t wv;
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "ARCEngine.load: items must be (key, weight) pairs, got %R", pair);
            goto done;
        }
        k = PySequence_Fast_GET_ITEM(pair, 0);
        w = PySequence_Fast_GET_ITEM(pair, 1);
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
        if (table_reserve(&self->keys) < 0 || (n = node_new(self, k, h, T2)) == NULL) {
            goto done;
        }
        n->weight = wv;
        self->weight += wv;
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

static PyObject *ARC_prepend(ARC *self, PyObject *keys)
{
    PyObject *seq = PySequence_Fast(keys, "ARCEngine.prepend: keys must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    if (enter(self) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    PyObject **it = PySequence_Fast_ITEMS(seq);
    int ok = 0;
    for (Py_ssize_t j = m - 1; j >= 0; j--) {
        PyObject *k = it[j];
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

static struct PyModuleDef engines_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perflayer.cache._engines_c",
    .m_doc = "C twins of perflayer.cache._policy_adaptive's engines (ARCEngine so far).",
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
    if (PyType_Ready(&ARCType) < 0) {
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
    return m;
}
