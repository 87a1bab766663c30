/*
 * perflayer.cache._auto_c: AutoCore in C, the per-access half of the default policy
 * (policy="auto", perflayer/cache/_policy_auto.py: read that module's essay first). It makes
 * exactly the calls of the Python ``AutoCore`` of that module, in the same order, with the same
 * results and exceptions (tests/cache/test_auto_c.py replays long random streams through both).
 *
 * Why C: the Python half cost ~4.4 us per new key's add at 1,024 entries (TinyLFU's own add:
 * 0.32 us), almost all of it the frames of add, _observe and _hand_over and their loop. Here a
 * buffered read costs a contains test on the real engine and one or two vectorcalls (the LIRS and
 * ARC simulations' bound `access`, and the TinyLFU twin's once there is one), its hit pattern is
 * counted in C, and the counts are added to the Python list ``_pat`` once per observation.
 *
 * Generic calls only: the engine and the simulations may be the C or the Python TinyLFU, LIRS and
 * ARC classes (other compilation units), so they are called through the object protocol
 * (PySequence_Contains, vectorcalls of their methods), never through their internals. Where the
 * twin's type is immutable, has no instance dict and the generic getattr (the C TinyLFU),
 * ``twin.access`` is bound once and kept until ``_twin`` is assigned again, instead of once per
 * observation as Python does: the same method either way.
 *
 * The state (``_buf``, ``_engine``, ``_tiny``, ``_twin``, ``_a1``, ``_a2``, ``_pat``, ``_batch``
 * as object slots; ``_epoch``, ``_seen``, ``_rhits``, ``_absent`` as int64 with the Python attribute
 * semantics: unset until assigned, AttributeError when read unset, ``del`` unsets) is set by the
 * deciding half (``_Selection``, a Python mixin first in the bases), which also keeps attributes
 * of its own in the instance ``__dict__``. ``_decide`` is looked up on the instance, so the
 * mixin's runs; ``_batch`` holds the observed keys around that call and is [] after it, also when
 * it raises.
 *
 * ``_missing()`` is the Python ``AutoCore._missing``: the twin's residents the real engine lacks,
 * kept per access in ``_absent`` (an int attribute like the three above; -1: not kept) while the
 * account is near its budget, and counted (one C loop over ``twin.order()``) only when not kept.
 * The observation steps the twin with ``twin.step(k, engine)``, which counts its victims the
 * engine lacks; add, update and remove count what the engine gains and loses that the twin holds.
 * Why: counted once per epoch, it cost ~570 ns per access at 2,048 entries for the first
 * ~90 x capacity accesses after a switch; kept, three or four lookups per miss.
 *
 * Re-entrancy. hash() and == of keys, the simulations' and engine's methods and ``_decide`` may
 * run Python code that changes any attribute: every attribute is read from the object again
 * after any call out (as the Python code reads ``self.x`` where it does), and every object used
 * across a call is held by a strong reference.
 *
 * Where this differs from the Python class (never for the state ``_Selection`` keeps):
 * - the hit-pattern counts go into ``_pat`` once at the end of an observation (also when a call
 *   raises: the keys done are counted, as Python's ``pat[p] += 1`` per key leaves them); only
 *   code running inside the observation could see the difference, and an index ``_pat`` lacks
 *   raises at the end rather than at the first key with that pattern;
 * - ``_epoch``, ``_seen``, ``_rhits`` hold ints of 64 bits (others raise TypeError or
 *   OverflowError on assignment; a sum past 2**63 raises OverflowError);
 * - ``_tiny`` is read for its truth when used, as Python's ``if self._tiny``, and is stored as
 *   given;
 * - ``add``/``update``/``remove`` call this type's ``_observe`` and ``_hand_over`` directly: a
 *   subclass overriding those two methods changes only direct calls of them;
 * - code run inside an observation (a key's ``__eq__`` calling back into a bare policy) sees
 *   ``_pat`` without the observation's counts so far, so a nested epoch end decides on fewer;
 *   a ``Cache`` cannot do this (its lock is not re-entrant).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "structmember.h"
#include "_capi.h"

/* the int64 attributes: their index in Core.ints and their bit in Core.isset */
enum { I_EPOCH, I_SEEN, I_RHITS, I_ABSENT, N_INTS };
static const char *const INT_NAMES[N_INTS] = {"_epoch", "_seen", "_rhits", "_absent"};

typedef struct {
    PyObject_HEAD
    PyObject *dict; /* the subclasses' attributes (the deciding mixin's state) */
    PyObject *buf;    /* _buf: the shared read buffer (a deque) */
    PyObject *engine; /* _engine: the real engine */
    PyObject *tiny;   /* _tiny: the engine is a TinyLFU (takes the reads in its own ring) */
    PyObject *twin;   /* _twin: None (the engine is its own twin) or the TinyLFU twin */
    PyObject *a0;     /* NULL, or twin.step while twin's type makes it the same every time */
    PyObject *a0x;    /* _a0: NULL (None), or the twin's step to call instead of twin.step */
    PyObject *a1;     /* _a1: the LIRS simulation's step */
    PyObject *a2;     /* _a2: the ARC simulation's step */
    PyObject *r1;     /* _r1: the LIRS simulation's remove */
    PyObject *r2;     /* _r2: the ARC simulation's remove */
    PyObject *pat;    /* _pat: this epoch's accesses by hit pattern */
    PyObject *batch;  /* _batch: the keys of the observation being decided on */
    int64_t ints[N_INTS];
    unsigned isset; /* bit i: ints[i] was assigned */
} Core;

static PyObject *DequeType;           /* collections.deque */

/* The prefetch entries of the C TinyLFU and of the C LIRS/ARC engines (their capsules, _capi.h).
   NULL: that extension is missing or another version. */
static const PolicyCAPI *tiny_api = NULL;
static const EnginesCAPI *engines_api = NULL;
static PyObject *S_add, *S_update, *S_remove, *S_hit, *S_step, *S_clear, *S_decide, *S_order;
static PyObject *S_wrote;

/* -- attributes ------------------------------------------------------------------------------ */

/* Return the (borrowed) object attribute ``v``, or NULL with Python's AttributeError. */
static PyObject *need(Core *self, PyObject *v, const char *name)
{
    if (v == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(self)->tp_name, name);
    }
    return v;
}

/* *out = the int attribute i; 0, or -1 with Python's AttributeError when unset. */
static int get_int(Core *self, int i, int64_t *out)
{
    if (!(self->isset & (1u << i))) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(self)->tp_name, INT_NAMES[i]);
        return -1;
    }
    *out = self->ints[i];
    return 0;
}

/* The int attribute i += n (read afresh: Python's ``self.x += n``). */
static int add_int(Core *self, int i, int64_t n)
{
    int64_t v;
    if (get_int(self, i, &v) < 0) {
        return -1;
    }
    if (__builtin_add_overflow(v, n, &v)) {
        PyErr_Format(PyExc_OverflowError, "AutoCore.%s overflowed 64 bits", INT_NAMES[i]);
        return -1;
    }
    self->ints[i] = v;
    return 0;
}

/* The int attribute i = v (Python's ``self.x = v``). */
static void put_int(Core *self, int i, int64_t v)
{
    self->ints[i] = v;
    self->isset |= 1u << i;
}

/* Store ``v`` (a new or borrowed reference, see ``steal``) in *slot; the old value is released
   last, after the slot is consistent (its __del__ may run Python code). */
static void set_slot(PyObject **slot, PyObject *v)
{
    PyObject *old = *slot;
    Py_XINCREF(v);
    *slot = v;
    Py_XDECREF(old);
}

static PyObject *Core_get_int(Core *self, void *closure)
{
    int64_t v;
    if (get_int(self, (int)(intptr_t)closure, &v) < 0) {
        return NULL;
    }
    return PyLong_FromLongLong(v);
}

static int Core_set_int(Core *self, PyObject *value, void *closure)
{
    int i = (int)(intptr_t)closure;
    if (value == NULL) { /* del: unset, as deleting an instance attribute */
        if (!(self->isset & (1u << i))) {
            PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                         Py_TYPE(self)->tp_name, INT_NAMES[i]);
            return -1;
        }
        self->isset &= ~(1u << i);
        self->ints[i] = 0;
        return 0;
    }
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "AutoCore.%s must be an int, got %R", INT_NAMES[i], value);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) {
        PyErr_Format(PyExc_OverflowError, "AutoCore.%s must fit in 64 bits, got %R",
                     INT_NAMES[i], value);
        return -1;
    }
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    self->ints[i] = (int64_t)v;
    self->isset |= 1u << i;
    return 0;
}

static PyObject *Core_get_twin(Core *self, void *Py_UNUSED(closure))
{
    return Py_XNewRef(need(self, self->twin, "_twin"));
}

static int Core_set_twin(Core *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL && self->twin == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '_twin'",
                     Py_TYPE(self)->tp_name);
        return -1;
    }
    PyObject *old = self->twin, *a0 = self->a0;
    Py_XINCREF(value);
    self->twin = value;
    self->a0 = NULL; /* the kept twin.step is the old twin's */
    Py_XDECREF(old);
    Py_XDECREF(a0);
    return 0;
}

/* _a0: the step the observation calls for the twin instead of ``_twin.step`` (None: that one):
   the deciding half sets it to the step of the engine's view when the engine is the twin
   itself (_policy_auto.SimEngine). */
static PyObject *Core_get_a0(Core *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->a0x != NULL ? self->a0x : Py_None);
}

static int Core_set_a0(Core *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value != NULL && value != Py_None && !PyCallable_Check(value)) {
        PyErr_Format(PyExc_TypeError, "_a0 must be callable or None, not %.100s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    set_slot(&self->a0x, value == Py_None ? NULL : value);
    return 0;
}

/* -- the per-access half ---------------------------------------------------------------------- */

/* Call ``f(k)`` and return its truth: 0 or 1, or -1 on an exception. */
static int call_truth(PyObject *f, PyObject *k)
{
    PyObject *args[2] = {NULL, k};
    PyObject *v = PyObject_Vectorcall(f, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (v == NULL) {
        return -1;
    }
    int t = v == Py_True ? 1 : v == Py_False ? 0 : PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

/* What one observation holds across its calls. */
typedef struct {
    PyObject *engine, *a0, *a1, *a2, *pat; /* strong references (a0 NULL: no twin) */
    Py_ssize_t counts[8];
    int64_t rh;
    int64_t absent; /* the twin's residents the engine lacks; -1: not kept */
    PyObject *other; /* borrowed: the engine where the count was kept at the start, else None */
    PyObject *pf[4]; /* borrowed (held by the references above): the structures a key visits */
    void (*pfn[4])(PyObject *p, Py_hash_t hh); /* and each one's prefetch */
    int npf;
    int write; /* the last key is a set without a get: the twin steps it with write=True */
} Obs;

/* Note the structure behind ``obj`` (an engine, or the object a bound C method is bound to)
   for the steps' prefetch, when a C extension's type can be asked for it. */
static void obs_prefetch_target(Obs *o, PyObject *obj, int bound)
{
    if (bound) {
        if (!PyCFunction_Check(obj) || (obj = PyCFunction_GET_SELF(obj)) == NULL) {
            return;
        }
    }
    void (*fn)(PyObject *, Py_hash_t) = NULL;
    if (tiny_api != NULL && tiny_api->is_policy(obj)) {
        fn = tiny_api->prefetch;
    }
    else if (engines_api != NULL) {
        fn = engines_api->prefetch; /* (nothing for a type other than LIRS and ARC) */
    }
    if (fn != NULL) {
        o->pf[o->npf] = obj;
        o->pfn[o->npf++] = fn;
    }
}

/* Ask every structure the key ``k`` will visit for its first slot at once (an exact str with
   its hash computed: no Python code runs). Why: the engine, the twin and the LIRS and ARC
   simulations each start a step on a cold miss of that slot; one after the other they cost a
   miss each, asked together the misses overlap. */
static inline void obs_prefetch(Obs *o, PyObject *k)
{
    if (o->npf == 0 || !PyUnicode_CheckExact(k)) {
        return;
    }
    Py_hash_t hh = ((PyASCIIObject *)k)->hash;
    if (hh == -1) {
        return;
    }
    for (int i = 0; i < o->npf; i++) {
        o->pfn[i](o->pf[i], hh);
    }
}

/* The start of Python's _observe: read the engine, the twin's step, the steps, pat and the kept
   count (``_absent``, then -1 until the observation ends). */
static int obs_start(Core *self, Obs *o)
{
    memset(o, 0, sizeof(*o));
    PyObject *engine = need(self, self->engine, "_engine");
    if (engine == NULL) {
        return -1;
    }
    o->engine = Py_NewRef(engine);
    PyObject *twin = need(self, self->twin, "_twin");
    if (twin == NULL) {
        return -1;
    }
    if (twin != Py_None && self->a0x != NULL) {
        o->a0 = Py_NewRef(self->a0x);
    }
    else if (twin != Py_None && self->a0 != NULL) {
        o->a0 = Py_NewRef(self->a0);
    }
    else if (twin != Py_None) {
        Py_INCREF(twin);
        o->a0 = PyObject_GetAttr(twin, S_step);
        /* why keep it: a bound method per observation is an allocation and a lookup per write;
           where the twin's type is immutable, has no instance dict and the generic getattr,
           ``twin.step`` is the same method every time (the _twin setter drops it) */
        PyTypeObject *t = Py_TYPE(twin);
        if (o->a0 != NULL && self->twin == twin && (t->tp_flags & Py_TPFLAGS_IMMUTABLETYPE) &&
            t->tp_dictoffset == 0 && t->tp_getattro == PyObject_GenericGetAttr) {
            set_slot(&self->a0, o->a0);
        }
        Py_DECREF(twin);
        if (o->a0 == NULL) {
            return -1;
        }
    }
    /* the getattr may have run Python code: the rest is read afresh */
    PyObject *a1 = need(self, self->a1, "_a1");
    if (a1 == NULL) {
        return -1;
    }
    o->a1 = Py_NewRef(a1);
    PyObject *a2 = need(self, self->a2, "_a2");
    if (a2 == NULL) {
        return -1;
    }
    o->a2 = Py_NewRef(a2);
    PyObject *pat = need(self, self->pat, "_pat");
    if (pat == NULL) {
        return -1;
    }
    o->pat = Py_NewRef(pat);
    obs_prefetch_target(o, o->engine, 0);
    if (o->a0 != NULL) {
        obs_prefetch_target(o, o->a0, 1);
    }
    obs_prefetch_target(o, o->a1, 1);
    obs_prefetch_target(o, o->a2, 1);
    if (get_int(self, I_ABSENT, &o->absent) < 0) {
        return -1;
    }
    put_int(self, I_ABSENT, -1);
    o->other = o->absent >= 0 ? o->engine : Py_None;
    return 0;
}

static void obs_release(Obs *o)
{
    Py_XDECREF(o->engine);
    Py_XDECREF(o->a0);
    Py_XDECREF(o->a1);
    Py_XDECREF(o->a2);
    Py_XDECREF(o->pat);
}

/* One key of the loop: the real engine's contains, the twin, LIRS and ARC (``write``: this
   key is a set without a get); 0 or -1. */
static int obs_step(Obs *o, PyObject *k, int write)
{
    obs_prefetch(o, k);
    int real = PySequence_Contains(o->engine, k);
    if (real < 0) {
        return -1;
    }
    o->rh += real;
    int p = real;
    if (o->a0 != NULL) {
        /* ``twin.step(k, other)``: None on a hit, else how many of its victims the engine lacks
           (other: the engine while the count is kept, else None) */
        PyObject *args[4] = {NULL, k, o->other, Py_True};
        size_t na = write ? 3 : 2;
        PyObject *lacks =
            PyObject_Vectorcall(o->a0, args + 1, na | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (lacks == NULL) {
            return -1;
        }
        p = lacks == Py_None;
        if (!p && o->absent >= 0) {
            /* n += (not real) - lacks, with Python's arithmetic on whatever step returned */
            long long c = PyLong_AsLongLong(lacks);
            if (c == -1 && PyErr_Occurred()) {
                Py_DECREF(lacks);
                return -1;
            }
            o->absent += !real - c;
        }
        Py_DECREF(lacks);
    }
    int t = call_truth(o->a1, k);
    if (t < 0) {
        return -1;
    }
    p += t << 1;
    t = call_truth(o->a2, k);
    if (t < 0) {
        return -1;
    }
    o->counts[p + (t << 2)]++;
    return 0;
}

/* Add the counts to pat (pat[i] += counts[i], in index order); 0 or -1. */
static int obs_flush(Obs *o)
{
    for (Py_ssize_t i = 0; i < 8; i++) {
        if (o->counts[i] == 0) {
            continue;
        }
        /* why: the deciding half keeps a list of 8 small ints; int + int there runs no Python
           code, so it is done without the generic protocol's four calls */
        if (PyList_CheckExact(o->pat) && i < PyList_GET_SIZE(o->pat) &&
            PyLong_CheckExact(PyList_GET_ITEM(o->pat, i))) {
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(PyList_GET_ITEM(o->pat, i), &overflow);
            if (!overflow && v >= 0 && v < ((long long)1 << 62)) {
                PyObject *sum = PyLong_FromLongLong(v + (long long)o->counts[i]);
                if (sum == NULL) {
                    return -1;
                }
                PyList_SetItem(o->pat, i, sum); /* steals sum; the old int runs no code */
                o->counts[i] = 0;
                continue;
            }
        }
        PyObject *cur = PySequence_GetItem(o->pat, i);
        if (cur == NULL) {
            return -1;
        }
        PyObject *c = PyLong_FromSsize_t(o->counts[i]);
        PyObject *sum = c == NULL ? NULL : PyNumber_InPlaceAdd(cur, c);
        Py_DECREF(cur);
        Py_XDECREF(c);
        if (sum == NULL) {
            return -1;
        }
        int r = PySequence_SetItem(o->pat, i, sum);
        Py_DECREF(sum);
        if (r < 0) {
            return -1;
        }
        o->counts[i] = 0;
    }
    return 0;
}

/* The end of Python's _observe after its loop (``err``: the loop raised; its exception is the
   one to see): the counts into pat, ``_rhits += rh``, ``_seen += len(keys)``, and a decision at
   an epoch's end. The keys are ``batch`` (a list or any sized iterable, whose len() is taken
   where Python takes it), or keys[0..n) when ``batch`` is NULL (a list is built for a
   decision). 0, or -1 with an exception. */
static int obs_finish(Core *self, Obs *o, int err, PyObject *batch, PyObject *const *keys,
                      Py_ssize_t n, PyObject *decide)
{
    if (err) {
        /* the keys done are counted, as pat[p] += 1 per key leaves them */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        if (obs_flush(o) < 0) {
            PyErr_Clear();
        }
        PyErr_Restore(et, ev, tb);
        return -1;
    }
    if (obs_flush(o) < 0) {
        return -1;
    }
    put_int(self, I_ABSENT, o->absent);
    if (add_int(self, I_RHITS, o->rh) < 0) {
        return -1;
    }
    int64_t seen, epoch;
    if (get_int(self, I_SEEN, &seen) < 0) {
        return -1;
    }
    if (batch != NULL && (n = PyObject_Length(batch)) < 0) {
        return -1;
    }
    if (add_int(self, I_SEEN, n) < 0 || get_int(self, I_SEEN, &seen) < 0 ||
        get_int(self, I_EPOCH, &epoch) < 0) {
        return -1;
    }
    if (seen < epoch) {
        return 0;
    }
    int d = decide == Py_True ? 1 : decide == Py_False ? 0 : PyObject_IsTrue(decide);
    if (d <= 0) {
        return d;
    }
    if (batch != NULL) {
        Py_INCREF(batch);
    }
    else {
        batch = PyList_New(n);
        if (batch == NULL) {
            return -1;
        }
        for (Py_ssize_t j = 0; j < n; j++) {
            PyList_SET_ITEM(batch, j, Py_NewRef(keys[j]));
        }
    }
    set_slot(&self->batch, batch);
    Py_DECREF(batch);
    PyObject *r = NULL;
    if (PyObject_SetAttr((PyObject *)self, S_wrote, o->write ? Py_True : Py_False) == 0) {
        r = PyObject_CallMethodNoArgs((PyObject *)self, S_decide);
    }
    Py_XDECREF(r);
    /* _batch is [] after the decision, also when it raised (whose exception is the one kept) */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *empty = PyList_New(0);
    if (empty != NULL) {
        set_slot(&self->batch, empty);
        Py_DECREF(empty);
    }
    if (r == NULL) {
        PyErr_Clear(); /* a MemoryError of the empty list: the decision's exception wins */
        PyErr_Restore(et, ev, tb);
        return -1;
    }
    return empty == NULL ? -1 : 0;
}

/* Python's _observe over the list ``list`` (a snapshot of ours), or over keys[0..n) when
   ``list`` is NULL (one key the caller holds). 0, or -1 with an exception. */
static int observe_keys(Core *self, PyObject *list, PyObject *const *keys, Py_ssize_t n,
                        PyObject *decide, int write)
{
    Obs o;
    int err = 0;
    if (obs_start(self, &o) < 0) {
        obs_release(&o);
        return -1;
    }
    o.write = write;
    /* Python's ``last = len(keys) - 1 if write else -1``, taken once before its loop */
    Py_ssize_t last = write ? (list != NULL ? PyList_GET_SIZE(list) : n) - 1 : -1;
    /* why the size read per step and a reference per key: the snapshot is ours, but Python code
       run by a step can still reach it (gc.get_referrers) and empty it, which would free its
       items under a cached pointer (HR's review, session 10); Python's for loop sees the
       shortened list, and so does this one */
    for (Py_ssize_t j = 0; j < (list != NULL ? PyList_GET_SIZE(list) : n); j++) {
        PyObject *k = Py_NewRef(list != NULL ? PyList_GET_ITEM(list, j) : keys[j]);
        int rc = obs_step(&o, k, j == last);
        Py_DECREF(k);
        if (rc < 0) {
            err = 1;
            break;
        }
    }
    int r = obs_finish(self, &o, err, list, keys, n, decide);
    obs_release(&o);
    return r;
}

/* Python's _hand_over: a TinyLFU engine takes the buffered reads in its own ring. */
static int hand_over(Core *self)
{
    PyObject *tiny = need(self, self->tiny, "_tiny");
    if (tiny == NULL) {
        return -1;
    }
    int t;
    if (tiny == Py_True || tiny == Py_False) {
        t = tiny == Py_True;
    }
    else {
        Py_INCREF(tiny);
        t = PyObject_IsTrue(tiny);
        Py_DECREF(tiny);
    }
    if (t <= 0) {
        return t;
    }
    PyObject *buf = need(self, self->buf, "_buf");
    if (buf == NULL) {
        return -1;
    }
    Py_INCREF(buf);
    PyObject *items = PySequence_List(buf);
    if (items == NULL) {
        Py_DECREF(buf);
        return -1;
    }
    PyObject *r = PyObject_CallMethodNoArgs(buf, S_clear);
    Py_DECREF(buf);
    if (r == NULL) {
        Py_DECREF(items);
        return -1;
    }
    Py_DECREF(r);
    PyObject *engine = need(self, self->engine, "_engine");
    PyObject *hit = engine == NULL ? NULL : PyObject_GetAttr(engine, S_hit);
    if (hit == NULL) {
        Py_DECREF(items);
        return -1;
    }
    int rc = 0;
    /* items is ours alone: no call can change it */
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(items); j++) {
        PyObject *args[2] = {NULL, PyList_GET_ITEM(items, j)};
        PyObject *v = PyObject_Vectorcall(hit, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (v == NULL) {
            rc = -1;
            break;
        }
        Py_DECREF(v);
    }
    Py_DECREF(hit);
    Py_DECREF(items);
    return rc;
}

/* The truth of ``self._buf`` (read afresh): 0 or 1, or -1. */
static int buf_truth(Core *self)
{
    PyObject *buf = need(self, self->buf, "_buf");
    if (buf == NULL) {
        return -1;
    }
    Py_INCREF(buf);
    int t = PyObject_IsTrue(buf);
    Py_DECREF(buf);
    return t;
}

/* ``self._observe(list(self._buf), decide)``: 0, or -1. */
static int observe_buffer(Core *self, PyObject *decide)
{
    PyObject *buf = need(self, self->buf, "_buf");
    if (buf == NULL) {
        return -1;
    }
    Py_INCREF(buf);
    PyObject *items = PySequence_List(buf);
    Py_DECREF(buf);
    if (items == NULL) {
        return -1;
    }
    int r = observe_keys(self, items, ((PyListObject *)items)->ob_item, PyList_GET_SIZE(items),
                         decide, 0);
    Py_DECREF(items);
    return r;
}

/* ``obj.remove(key)`` (``obj`` held by the caller), its result dropped; 0, or -1. */
static int call_remove(PyObject *obj, PyObject *key)
{
    PyObject *args[2] = {obj, key};
    PyObject *r = PyObject_VectorcallMethod(S_remove, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                            NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* ``f(key)`` (``f`` borrowed: held across the call), its result dropped; 0, or -1. */
static int call_one(PyObject *f, PyObject *key)
{
    Py_INCREF(f);
    PyObject *args[2] = {NULL, key};
    PyObject *r = PyObject_Vectorcall(f, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(f);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* ``n += [v in twin for v in victims].count(True)`` (``twin`` held); 0 or -1. */
static int count_held(PyObject *twin, PyObject *victims, int64_t *n)
{
    PyObject *it = PyObject_GetIter(victims);
    if (it == NULL) {
        return -1;
    }
    PyObject *v;
    while ((v = PyIter_Next(it)) != NULL) {
        int in = PySequence_Contains(twin, v);
        Py_DECREF(v);
        if (in < 0) {
            Py_DECREF(it);
            return -1;
        }
        *n += in;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* The start of Python's _write and remove after ``engine = self._engine``: ``twin =
   self._twin``; the count is kept (*kept) when the twin is not None and ``self._absent >= 0``;
   then ``held = key in engine``, ``n = self._absent`` read again (used as read) and
   ``self._absent = -1`` until the count is right again (an exception leaves it so). *twin is a
   new reference on success. 0, or -1. */
static int kept_start(Core *self, PyObject *engine, PyObject *key, PyObject **twin, int *kept,
                      int *held, int64_t *n)
{
    *kept = *held = 0;
    *twin = need(self, self->twin, "_twin");
    if (*twin == NULL || (*twin != Py_None && get_int(self, I_ABSENT, n) < 0)) {
        return -1;
    }
    Py_INCREF(*twin);
    if (*twin != Py_None && *n >= 0) {
        *kept = 1;
        if ((*held = PySequence_Contains(engine, key)) < 0 || get_int(self, I_ABSENT, n) < 0) {
            Py_CLEAR(*twin);
            return -1;
        }
        put_int(self, I_ABSENT, -1);
    }
    return 0;
}

/* Python's _write: the engine's add or update (``name``) of ``key``, the kept count of the
   twin's residents the engine lacks brought up to date when kept. A new reference, or NULL. */
static PyObject *engine_write(Core *self, PyObject *name, PyObject *key, PyObject *weight)
{
    PyObject *engine = need(self, self->engine, "_engine");
    if (engine == NULL) {
        return NULL;
    }
    Py_INCREF(engine);
    PyObject *args[3] = {engine, key, weight};
    size_t nargs = 3 | PY_VECTORCALL_ARGUMENTS_OFFSET;
    PyObject *victims = NULL, *twin;
    int kept, held;
    int64_t n;
    if (kept_start(self, engine, key, &twin, &kept, &held, &n) < 0) {
        Py_DECREF(engine);
        return NULL;
    }
    Py_DECREF(twin); /* Python reads the twin again after the write */
    victims = PyObject_VectorcallMethod(name, args, nargs, NULL);
    if (!kept || victims == NULL) {
        goto done;
    }
    /* the engine gains ``key`` unless it held it, and loses its victims (``key`` among them
       only if it left: then its gain and loss cancel, or it was held); a twin resident it gains
       is absent no more, one it loses is absent again */
    if ((twin = need(self, self->twin, "_twin")) == NULL) {
        Py_CLEAR(victims);
        goto done;
    }
    Py_INCREF(twin);
    int in = held ? 0 : PySequence_Contains(twin, key);
    if (in >= 0) {
        n -= in;
    }
    if (in < 0 || count_held(twin, victims, &n) < 0) {
        Py_CLEAR(victims);
    }
    else {
        put_int(self, I_ABSENT, n);
    }
    Py_DECREF(twin);
done:
    Py_DECREF(engine);
    return victims;
}

/* Parse (key, weight) or (key,) given positionally or by keyword: 0, or -1 with TypeError. */
static int parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, const char *const *names, Py_ssize_t want,
                      PyObject **out)
{
    if (kwnames == NULL && nargs == want) {
        for (Py_ssize_t i = 0; i < want; i++) {
            out[i] = args[i];
        }
        return 0;
    }
    if (nargs > want) {
        PyErr_Format(PyExc_TypeError, "AutoCore.%s() takes %zd positional arguments but %zd were "
                     "given", fname, want + 1, nargs + 1);
        return -1;
    }
    for (Py_ssize_t i = 0; i < want; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < want && PyUnicode_CompareWithASCIIString(kw, names[i]) != 0) {
            i++;
        }
        if (i == want) {
            PyErr_Format(PyExc_TypeError, "AutoCore.%s() got an unexpected keyword argument '%S'",
                         fname, kw);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "AutoCore.%s() got multiple values for argument '%s'",
                         fname, names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < want; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "AutoCore.%s() missing required argument: '%s'", fname,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

static const char *const KEY_WEIGHT[] = {"key", "weight"};
static const char *const KEY_ONLY[] = {"key"};
static const char *const KEYS_DECIDE_WRITE[] = {"keys", "decide", "write"};

static PyObject *Core_add(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    if (parse_args("add", args, nargs, kwnames, KEY_WEIGHT, 2, a) < 0) {
        return NULL;
    }
    PyObject *key = a[0], *weight = a[1];
    int64_t epoch;
    if (get_int(self, I_EPOCH, &epoch) < 0) {
        return NULL;
    }
    if (epoch) {
        /* the buffered reads, and the write itself unless it follows its own read miss */
        PyObject *buf = need(self, self->buf, "_buf");
        if (buf == NULL) {
            return NULL;
        }
        int r;
        if (Py_IS_TYPE(buf, (PyTypeObject *)DequeType) && PyObject_Length(buf) == 0) {
            /* why: list(empty deque) + [key] is the key alone; no list until a decision */
            r = observe_keys(self, NULL, &key, 1, Py_True, 1);
        }
        else {
            Py_INCREF(buf);
            PyObject *items = PySequence_List(buf);
            Py_DECREF(buf);
            if (items == NULL) {
                return NULL;
            }
            Py_ssize_t n = PyList_GET_SIZE(items);
            int append = 1;
            if (n) {
                PyObject *last = Py_NewRef(PyList_GET_ITEM(items, n - 1));
                PyObject *ne = PyObject_RichCompare(last, key, Py_NE);
                Py_DECREF(last);
                append = ne == NULL ? -1 : ne == Py_True ? 1 : ne == Py_False ? 0
                                                                               : PyObject_IsTrue(ne);
                Py_XDECREF(ne);
            }
            if (append > 0) {
                append = PyList_Append(items, key) < 0 ? -1 : 1;
            }
            r = append < 0 ? -1
                           : observe_keys(self, items, ((PyListObject *)items)->ob_item,
                                          PyList_GET_SIZE(items), Py_True, append);
            Py_DECREF(items);
        }
        if (r < 0) {
            return NULL;
        }
    }
    int t = buf_truth(self);
    if (t < 0 || (t && hand_over(self) < 0)) {
        return NULL;
    }
    return engine_write(self, S_add, key, weight);
}

/* update's and remove's start: ``if self._buf: (if self._epoch: self._observe(list(self._buf),
   decide)); self._hand_over()``. 0, or -1 with an exception. */
static int flush_reads(Core *self, PyObject *decide)
{
    int t = buf_truth(self);
    if (t <= 0) {
        return t;
    }
    int64_t epoch;
    if (get_int(self, I_EPOCH, &epoch) < 0 || (epoch && observe_buffer(self, decide) < 0) ||
        hand_over(self) < 0) {
        return -1;
    }
    return 0;
}

static PyObject *Core_update(Core *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    PyObject *a[2];
    if (parse_args("update", args, nargs, kwnames, KEY_WEIGHT, 2, a) < 0 ||
        flush_reads(self, Py_True) < 0) {
        return NULL;
    }
    return engine_write(self, S_update, a[0], a[1]);
}

static PyObject *Core_remove(Core *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    PyObject *a[1];
    if (parse_args("remove", args, nargs, kwnames, KEY_ONLY, 1, a) < 0 ||
        flush_reads(self, Py_False) < 0) {
        return NULL;
    }
    /* Python's remove after the reads: the engine's and the twin's (the kept count brought up
       to date when kept), then the simulations' when there are simulations */
    PyObject *key = a[0];
    PyObject *engine = need(self, self->engine, "_engine");
    if (engine == NULL) {
        return NULL;
    }
    Py_INCREF(engine);
    PyObject *twin;
    int kept, held, ok = 0;
    int64_t n;
    if (kept_start(self, engine, key, &twin, &kept, &held, &n) < 0) {
        Py_DECREF(engine);
        return NULL;
    }
    if (call_remove(engine, key) < 0) {
        goto done;
    }
    if (twin != Py_None) {
        if (kept && !held) {
            int in = PySequence_Contains(twin, key);
            if (in < 0) {
                goto done;
            }
            n -= in; /* absent from the engine, and now from the twin */
        }
        if (call_remove(twin, key) < 0) {
            goto done;
        }
        if (kept) {
            put_int(self, I_ABSENT, n);
        }
    }
    int64_t epoch;
    if (get_int(self, I_EPOCH, &epoch) < 0) {
        goto done;
    }
    if (epoch) {
        PyObject *r = need(self, self->r1, "_r1");
        if (r == NULL || call_one(r, key) < 0 || (r = need(self, self->r2, "_r2")) == NULL ||
            call_one(r, key) < 0) {
            goto done;
        }
    }
    ok = 1;
done:
    Py_DECREF(twin);
    Py_DECREF(engine);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Core_observe(Core *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    /* (keys, decide, write=False) */
    PyObject *a[3];
    Py_ssize_t given = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    Py_ssize_t want = given == 3 ? 3 : 2;
    if (parse_args("_observe", args, nargs, kwnames, KEYS_DECIDE_WRITE, want, a) < 0) {
        return NULL;
    }
    PyObject *keys = a[0], *decide = a[1];
    int write = want == 3 ? PyObject_IsTrue(a[2]) : 0;
    if (write < 0) {
        return NULL;
    }
    /* ``last = len(keys) - 1 if write else -1``, before the loop */
    Py_ssize_t last = write ? PyObject_Length(keys) : 0;
    if (last < 0) {
        return NULL;
    }
    last -= 1;
    Obs o;
    if (obs_start(self, &o) < 0) {
        obs_release(&o);
        return NULL;
    }
    o.write = write;
    /* ``for i, k in enumerate(keys)``: any iterable, a list followed as it changes; then
       ``len(keys)`` */
    int err = 0;
    PyObject *it = PyObject_GetIter(keys);
    if (it == NULL) {
        err = 1;
    }
    for (Py_ssize_t j = 0; !err; j++) {
        PyObject *k = PyIter_Next(it);
        if (k == NULL) {
            err = PyErr_Occurred() != NULL;
            break;
        }
        err = obs_step(&o, k, j == last) < 0;
        Py_DECREF(k);
    }
    Py_XDECREF(it);
    int r = obs_finish(self, &o, err, keys, NULL, 0, decide);
    obs_release(&o);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Core_hand_over(Core *self, PyObject *Py_UNUSED(ignored))
{
    if (hand_over(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ``k, _w = item``: *k a borrowed reference (the tuple's) or a new one (*own set); 0 or -1. */
static int unpack_key(PyObject *item, PyObject **k, PyObject **own)
{
    *own = NULL;
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
        *k = PyTuple_GET_ITEM(item, 0);
        return 0;
    }
    /* anything else is unpacked as Python does, with its messages */
    PyObject *it = PyObject_GetIter(item);
    if (it == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                         Py_TYPE(item)->tp_name);
        }
        return -1;
    }
    PyObject *got[3] = {NULL, NULL, NULL};
    int n = 0;
    while (n < 3) {
        got[n] = PyIter_Next(it);
        if (got[n] == NULL) {
            break;
        }
        n++;
    }
    Py_DECREF(it);
    int r = 0;
    if (PyErr_Occurred()) {
        r = -1;
    }
    else if (n < 2) {
        PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 2, got %d)", n);
        r = -1;
    }
    else if (n > 2) {
        PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
        r = -1;
    }
    if (r == 0) {
        *k = *own = got[0];
        got[0] = NULL;
    }
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(got[i]);
    }
    return r;
}

/* _missing(): how many of the twin's residents the real engine lacks (0 without a twin), as
   ``sum(1 for k, _w in twin.order() if k not in engine)`` with the engine and the twin read
   first. */
static PyObject *Core_missing(Core *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *twin = need(self, self->twin, "_twin");
    if (twin == NULL) {
        return NULL;
    }
    if (twin == Py_None) {
        return PyLong_FromLong(0);
    }
    int64_t kept;
    if (get_int(self, I_ABSENT, &kept) < 0) {
        return NULL;
    }
    if (kept >= 0) {
        return PyLong_FromLongLong(kept);
    }
    PyObject *engine = need(self, self->engine, "_engine");
    if (engine == NULL) {
        return NULL;
    }
    Py_INCREF(engine);
    Py_INCREF(twin);
    PyObject *args[1] = {twin};
    PyObject *order = PyObject_VectorcallMethod(S_order, args,
                                                1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(twin);
    PyObject *it = order == NULL ? NULL : PyObject_GetIter(order);
    Py_XDECREF(order);
    if (it == NULL) {
        Py_DECREF(engine);
        return NULL;
    }
    Py_ssize_t missing = 0;
    int err = 0;
    for (;;) {
        PyObject *item = PyIter_Next(it);
        if (item == NULL) {
            err = PyErr_Occurred() != NULL;
            break;
        }
        PyObject *k, *own;
        int in = unpack_key(item, &k, &own);
        if (in == 0) {
            if (own == NULL) {
                Py_INCREF(k); /* the item may go while ``in`` runs Python code */
                own = k;
            }
            in = PySequence_Contains(engine, k);
            Py_DECREF(own);
        }
        Py_DECREF(item);
        if (in < 0) {
            err = 1;
            break;
        }
        missing += !in;
    }
    Py_DECREF(it);
    Py_DECREF(engine);
    if (err) {
        return NULL;
    }
    put_int(self, I_ABSENT, missing);
    return PyLong_FromSsize_t(missing);
}

static PyObject *Core_decide(Core *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    PyErr_SetString(PyExc_NotImplementedError,
                    "AutoCore._decide is the deciding half's (AutoPolicy's _Selection)");
    return NULL;
}

/* -- the type --------------------------------------------------------------------------------- */

static int Core_traverse(Core *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    Py_VISIT(self->buf);
    Py_VISIT(self->engine);
    Py_VISIT(self->tiny);
    Py_VISIT(self->twin);
    Py_VISIT(self->a0);
    Py_VISIT(self->a0x);
    Py_VISIT(self->a1);
    Py_VISIT(self->a2);
    Py_VISIT(self->r1);
    Py_VISIT(self->r2);
    Py_VISIT(self->pat);
    Py_VISIT(self->batch);
    return 0;
}

static int Core_clear(Core *self)
{
    Py_CLEAR(self->dict);
    Py_CLEAR(self->buf);
    Py_CLEAR(self->engine);
    Py_CLEAR(self->tiny);
    Py_CLEAR(self->twin);
    Py_CLEAR(self->a0);
    Py_CLEAR(self->a0x);
    Py_CLEAR(self->a1);
    Py_CLEAR(self->a2);
    Py_CLEAR(self->r1);
    Py_CLEAR(self->r2);
    Py_CLEAR(self->pat);
    Py_CLEAR(self->batch);
    return 0;
}

static void Core_dealloc(Core *self)
{
    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, Core_dealloc)
    Core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
    Py_TRASHCAN_END
}

static PyMethodDef Core_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Core_add, METH_FASTCALL | METH_KEYWORDS,
     "add(key, weight)\n--\n\nInsert ``key`` and return the keys to evict (never ``key``)."},
    {"update", (PyCFunction)(void (*)(void))Core_update, METH_FASTCALL | METH_KEYWORDS,
     "update(key, weight)\n--\n\nRecord a new weight for ``key`` and return the keys to evict."},
    {"remove", (PyCFunction)(void (*)(void))Core_remove, METH_FASTCALL | METH_KEYWORDS,
     "remove(key)\n--\n\nForget ``key``; unknown keys are ignored."},
    {"_observe", (PyCFunction)(void (*)(void))Core_observe, METH_FASTCALL | METH_KEYWORDS,
     "_observe(keys, decide)\n--\n\nFeed ``keys`` to every simulation, count the real hits; "
     "decide at an epoch's end."},
    {"_hand_over", (PyCFunction)Core_hand_over, METH_NOARGS,
     "_hand_over()\n--\n\nGive the buffered reads to a TinyLFU engine's own ring."},
    {"_missing", (PyCFunction)Core_missing, METH_NOARGS,
     "_missing()\n--\n\nReturn how many of the twin's residents the real engine lacks (0 "
     "without a twin)."},
    {"_decide", (PyCFunction)Core_decide, METH_NOARGS,
     "_decide()\n--\n\nRaise NotImplementedError: the deciding half (a subclass) decides."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Core_members[] = {
    {"_buf", T_OBJECT_EX, offsetof(Core, buf), 0, "the shared read buffer (a deque)"},
    {"_engine", T_OBJECT_EX, offsetof(Core, engine), 0, "the real engine"},
    {"_tiny", T_OBJECT_EX, offsetof(Core, tiny), 0,
     "the engine is a TinyLFU (it takes the buffered reads in its own ring)"},
    {"_a1", T_OBJECT_EX, offsetof(Core, a1), 0, "the LIRS simulation's step"},
    {"_a2", T_OBJECT_EX, offsetof(Core, a2), 0, "the ARC simulation's step"},
    {"_r1", T_OBJECT_EX, offsetof(Core, r1), 0, "the LIRS simulation's remove"},
    {"_r2", T_OBJECT_EX, offsetof(Core, r2), 0, "the ARC simulation's remove"},
    {"_pat", T_OBJECT_EX, offsetof(Core, pat), 0,
     "this epoch's accesses by hit pattern (bit i: simulation i hit)"},
    {"_batch", T_OBJECT_EX, offsetof(Core, batch), 0,
     "the keys of the observation being decided on"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Core_getset[] = {
    {"_twin", (getter)Core_get_twin, (setter)Core_set_twin,
     "None (the engine is its own twin) or the TinyLFU twin", NULL},
    {"_a0", (getter)Core_get_a0, (setter)Core_set_a0,
     "the twin's step the observation calls (None: _twin.step)", NULL},
    {"_epoch", (getter)Core_get_int, (setter)Core_set_int,
     "accesses per decision; 0: no selection (the engine alone)", (void *)(intptr_t)I_EPOCH},
    {"_seen", (getter)Core_get_int, (setter)Core_set_int, "this epoch's accesses",
     (void *)(intptr_t)I_SEEN},
    {"_rhits", (getter)Core_get_int, (setter)Core_set_int, "this epoch's real hits",
     (void *)(intptr_t)I_RHITS},
    {"_absent", (getter)Core_get_int, (setter)Core_set_int,
     "the twin's residents the engine lacks, kept per access; -1: not kept",
     (void *)(intptr_t)I_ABSENT},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perflayer.cache._auto_c.AutoCore",
    .tp_doc = "The per-access half of AutoPolicy in C, call-identical to "
              "_policy_auto.AutoCore.",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_methods = Core_methods,
    .tp_members = Core_members,
    .tp_getset = Core_getset,
    .tp_dictoffset = offsetof(Core, dict),
};

static struct PyModuleDef auto_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perflayer.cache._auto_c",
    .m_doc = "AutoCore in C: the per-access half of the default policy (see _policy_auto).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__auto_c(void)
{
    if (DequeType == NULL) {
        PyObject *collections = PyImport_ImportModule("collections");
        if (collections == NULL) {
            return NULL;
        }
        DequeType = PyObject_GetAttrString(collections, "deque");
        Py_DECREF(collections);
        if (DequeType == NULL) {
            return NULL;
        }
    }
    struct {
        PyObject **slot;
        const char *s;
    } names[] = {{&S_add, "add"},       {&S_update, "update"}, {&S_remove, "remove"},
                 {&S_hit, "hit"},       {&S_step, "step"},     {&S_clear, "clear"},
                 {&S_decide, "_decide"}, {&S_order, "order"}, {&S_wrote, "_wrote"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL && (*names[i].slot = PyUnicode_InternFromString(names[i].s)) ==
                                          NULL) {
            return NULL;
        }
    }
    if (tiny_api == NULL) {
        const PolicyCAPI *api = PyCapsule_Import("perflayer.cache._tinylfu_c._C_API", 0);
        tiny_api = (api != NULL && api->version == 1) ? api : NULL;
        PyErr_Clear();
    }
    if (engines_api == NULL) {
        const EnginesCAPI *api = PyCapsule_Import("perflayer.cache._engines_c._C_API", 0);
        engines_api = (api != NULL && api->version == 1) ? api : NULL;
        PyErr_Clear();
    }
    if (PyType_Ready(&CoreType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&auto_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "AutoCore", (PyObject *)&CoreType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
