/*
 * perflayer.cache._fastpath_c: Cache.get's hit/miss paths and Cache.set's plain paths in C.
 *
 * Read perflayer/cache/_core.py first (its module docstring, Cache.get, Cache.set and the
 * comments on every trick in them): this file mirrors those two methods line by line, and
 * every case they hand to a helper (_get_miss, _get_expired, _set_plain, _store, _fold_fresh,
 * _active_expire, _untag, estimate, _norm, _now_ms) calls that same Python helper, so the
 * behaviour cannot drift. Every case the C code does not take (options other than an int
 * `ex`, odd argument lists, attributes of an unexpected type) calls the Python method itself
 * (`type(cache).get` / `type(cache).set`) before anything was evaluated, so argument errors and
 * option handling are Python's own.
 *
 * Use: `cache.get = fast_get(cache)`, `cache.set = fast_set(cache)` (instance attributes shadow
 * the methods). Each returns a builtin function bound to a small holder of the cache and its
 * instance __dict__; every call reads the cache's attributes from that dict afresh (they are
 * rebound: `_due` on every schedule change) and the module globals `_time`, `estimate`,
 * `_now_ms` of perflayer.cache._core afresh (so a patched clock is seen).
 *
 * Why C: a new-key SET's one Python frame (argument handling, weighing, entry creation, the
 * lock, counters, the TTL schedule) cost ~12.5k instructions; here it is C calls on the same
 * objects.
 *
 * The entries are this module's `Entry` type (see "the entry": _core._Entry where this module is
 * built), untracked by the cyclic GC while they can be part of no reference cycle.
 *
 * Thread safety is Python's: the GIL. The get hit path takes no lock and runs no Python code
 * between the dict lookup and the counter/policy updates (field reads and writes of Entry and
 * slot ones of LevelStats, the C policy's `hit`); the lock-free overwrite stores the entry's value
 * last; the new-key insert takes the cache's lock (this module's `Lock` directly, any other lock
 * by calling its acquire/release). Every object read from the cache is held by a strong reference
 * while any Python code can run (a value's __del__ runs when an entry is dropped).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>
#include "_capi.h"

/* ------------------------------------------------------------------ module state */

static int initialized = 0;
static PyTypeObject EntryTypeObj;       /* Entry, _core._Entry where built (see "the entry") */
#define EntryType (&EntryTypeObj)
static PyTypeObject *LevelType = NULL;  /* _core.LevelStats */
static PyTypeObject *LevelDefType = NULL; /* _core.CacheLevel */
static PyObject *core_globals = NULL;   /* _core.__dict__ */
static PyObject *float_1000 = NULL;     /* 1000.0 */
static PyObject *float_0 = NULL;        /* 0.0, the `expire` of every key without a TTL */
static PyObject *orig_time = NULL;      /* the builtin time.time (see clock_direct) */
static long long ENTRY_OVERHEAD = 0;
static long long SCALAR_SIZE = 0;
static long long FRESH_MAX = 0;
static long long BIG = 0; /* _core._BIG (2**62) */
static PyObject *orig_fold = NULL; /* Cache.__dict__["_fold_fresh"] at import (see fold_fresh) */
static PyTypeObject *DequeType = NULL; /* _core.deque (collections.deque) */
static PyCFunction deque_append = NULL; /* deque.append's C function (METH_O), or NULL */
/* _tinylfu_c's C API for the new-key insert (its capsule _C_API, _capi.h): the prefetch hint
 * and `add` without a method call (see "the policy" at insert_locked) */
static const PolicyCAPI *policy_capi = NULL; /* NULL: no _tinylfu_c (or another version) */
/* _policy.LRUPolicy, its `add` function and slot offsets (see lru_fill); lru_add_fn NULL: off */
static PyTypeObject *LRUType = NULL;
static PyObject *lru_add_fn = NULL;
static Py_ssize_t off_lru_order, off_lru_total, off_lru_max_entries, off_lru_max_weight;

/* slot offsets (of the Entry struct below, and of LevelStats' and CacheLevel's __slots__) */
#define off_e_expire offsetof(Entry, expire)
#define off_e_key offsetof(Entry, key)
#define off_e_lvl offsetof(Entry, lvl)
#define off_e_plain_vw offsetof(Entry, plain_vw)
#define off_e_tags offsetof(Entry, tags)
#define off_e_value offsetof(Entry, value)
#define off_e_weight offsetof(Entry, weight)
static Py_ssize_t off_l_hits, off_l_misses, off_l_entries, off_l_bytes, off_l_evicted_size,
    off_l_level, off_d_name, off_d_ttl;

/* One stored value with its expiry, level, weight and tags: _core._Entry's seven slots. */
typedef struct {
    PyObject_HEAD
    PyObject *expire, *key, *lvl, *plain_vw, *tags, *value, *weight;
} Entry;

/* interned names */
static PyObject *s_data, *s_default, *s_policy_hit, *s_policy_miss, *s_policy_add, *s_decode,
    *s_rmw, *s_lock, *s_fresh, *s_due, *s_max_bytes, *s_get_miss, *s_get_expired, *s_set_plain,
    *s_store, *s_untag, *s_fold_fresh, *s_active_expire, *s_norm, *s_acquire, *s_release,
    *s_time, *s_estimate, *s_now_ms, *s_get, *s_set, *s_lvl, *s_tags, *s_weight, *s_hits,
    *s_misses, *s_entries, *s_bytes, *s_evicted_size, *s_append, *s_expiry_heap, *s_run_keys,
    *s_run_when, *s_run_tail,
    *s_heappush, *s_rebuild_heap, *s_expire;

/* set()'s parameters, in order */
#define NPARAMS 12
static const char *param_names[NPARAMS] = {"name", "value", "ex",   "px",   "nx",    "xx",
                                            "keepttl", "get", "exat", "pxat", "level", "tags"};
static PyObject *param_str[NPARAMS];

static int intern(PyObject **slot, const char *s) {
    *slot = PyUnicode_InternFromString(s);
    return *slot ? 0 : -1;
}

/* Find the offset of the object slot `name` of a __slots__ class, or -1 with an error set. */
static Py_ssize_t slot_offset(PyTypeObject *tp, const char *name) {
    PyObject *d = PyDict_GetItemString(tp->tp_dict, name); /* borrowed */
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_RuntimeError, "_fastpath_c: %s.%s is not a slot", tp->tp_name, name);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY)) {
        PyErr_Format(PyExc_RuntimeError, "_fastpath_c: %s.%s is not an object slot", tp->tp_name,
                     name);
        return -1;
    }
    return m->offset;
}

static int const_ll(const char *name, long long *out) {
    PyObject *v = PyDict_GetItemString(core_globals, name); /* borrowed */
    if (v == NULL || !PyLong_CheckExact(v)) {
        PyErr_Format(PyExc_RuntimeError, "_fastpath_c: _core.%s is not an int", name);
        return -1;
    }
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* Import perflayer.cache._core lazily (it imports this module when a Cache is built). */
static int ensure_init(void) {
    if (initialized) return 0;
    PyObject *mod = PyImport_ImportModule("perflayer.cache._core");
    if (mod == NULL) return -1;
    PyObject *g = PyModule_GetDict(mod); /* borrowed */
    PyObject *lt = PyDict_GetItemString(g, "LevelStats");
    PyObject *dt = PyDict_GetItemString(g, "CacheLevel");
    if (lt == NULL || dt == NULL || !PyType_Check(lt) || !PyType_Check(dt)) {
        Py_DECREF(mod);
        PyErr_SetString(PyExc_RuntimeError, "_fastpath_c: _core has no LevelStats/CacheLevel");
        return -1;
    }
    PyTypeObject *L = (PyTypeObject *)lt, *D = (PyTypeObject *)dt;
    PyObject *ct = PyDict_GetItemString(g, "Cache");
    PyObject *of = (ct != NULL && PyType_Check(ct))
                       ? PyDict_GetItemString(((PyTypeObject *)ct)->tp_dict, "_fold_fresh")
                       : NULL;
    if (of == NULL) {
        Py_DECREF(mod);
        PyErr_SetString(PyExc_RuntimeError, "_fastpath_c: _core.Cache has no _fold_fresh");
        return -1;
    }
    PyObject *dq = PyDict_GetItemString(g, "deque");
    if (dq != NULL && PyType_Check(dq)) {
        PyObject *ap = PyDict_GetItemString(((PyTypeObject *)dq)->tp_dict, "append");
        if (ap != NULL && Py_IS_TYPE(ap, &PyMethodDescr_Type) &&
            ((PyMethodDescrObject *)ap)->d_method->ml_flags == METH_O) {
            Py_INCREF(dq);
            DequeType = (PyTypeObject *)dq;
            deque_append = ((PyMethodDescrObject *)ap)->d_method->ml_meth;
        }
    }
    {
        PyObject *tm = PyImport_ImportModule("time");
        PyObject *tt = tm ? PyObject_GetAttrString(tm, "time") : NULL;
        Py_XDECREF(tm);
        if (tt == NULL) {
            Py_DECREF(mod);
            return -1;
        }
        /* only the builtin itself (not a patched time.time) may be read in C */
        if (PyCFunction_Check(tt) && strcmp(((PyCFunctionObject *)tt)->m_ml->ml_name, "time") == 0 &&
            orig_time == NULL) {
            orig_time = tt;
        } else {
            Py_DECREF(tt);
        }
    }
    {
        /* the C policy's API; without it (no _tinylfu_c) every policy is called as a method */
        const PolicyCAPI *api = PyCapsule_Import("perflayer.cache._tinylfu_c._C_API", 0);
        if (api == NULL) PyErr_Clear();
        policy_capi = (api != NULL && api->version == 1) ? api : NULL;
    }
    {
        /* LRUPolicy.add's filling case in C (lru_fill); without it LRU adds are method calls */
        PyObject *pm = PyImport_ImportModule("perflayer.cache._policy");
        PyObject *lt2 = pm ? PyObject_GetAttrString(pm, "LRUPolicy") : NULL;
        PyObject *af = (lt2 != NULL && PyType_Check(lt2))
                           ? PyDict_GetItemString(((PyTypeObject *)lt2)->tp_dict, "add")
                           : NULL; /* borrowed */
        PyTypeObject *T = (PyTypeObject *)lt2;
        if (af != NULL && PyFunction_Check(af) &&
            (off_lru_order = slot_offset(T, "_order")) >= 0 &&
            (off_lru_total = slot_offset(T, "_total")) >= 0 &&
            (off_lru_max_entries = slot_offset(T, "max_entries")) >= 0 &&
            (off_lru_max_weight = slot_offset(T, "max_weight")) >= 0) {
            Py_INCREF(af);
            lru_add_fn = af;
            Py_INCREF(T);
            LRUType = T;
        }
        PyErr_Clear();
        Py_XDECREF(lt2);
        Py_XDECREF(pm);
    }
    core_globals = g;
    if ((off_l_hits = slot_offset(L, "hits")) < 0 ||
        (off_l_level = slot_offset(L, "level")) < 0 || (off_d_name = slot_offset(D, "name")) < 0 ||
        (off_d_ttl = slot_offset(D, "ttl")) < 0 ||
        (off_l_misses = slot_offset(L, "misses")) < 0 ||
        (off_l_entries = slot_offset(L, "entries")) < 0 ||
        (off_l_bytes = slot_offset(L, "bytes")) < 0 ||
        (off_l_evicted_size = slot_offset(L, "evicted_size")) < 0 ||
        const_ll("_ENTRY_OVERHEAD", &ENTRY_OVERHEAD) < 0 ||
        const_ll("_SCALAR_SIZE", &SCALAR_SIZE) < 0 || const_ll("_FRESH_MAX", &FRESH_MAX) < 0 ||
        const_ll("_BIG", &BIG) < 0) {
        core_globals = NULL;
        Py_DECREF(mod);
        return -1;
    }
    /* the module stays imported (sys.modules); keep its dict and the two types alive */
    Py_INCREF(g);
    Py_INCREF(of);
    orig_fold = of;
    Py_INCREF(L);
    Py_INCREF(D);
    LevelType = L;
    LevelDefType = D;
    Py_DECREF(mod);
    initialized = 1;
    return 0;
}

/* ------------------------------------------------------------------ small helpers */

/* The new-key insert's weight as an int (the entry's `weight`, the policy's argument): one
 * shared int object per weight in [ENTRY_OVERHEAD, ENTRY_OVERHEAD + WEIGHT_INTS), as CPython
 * shares its small ints. Why: a weight (~170-1,200 for short keys and scalar values) is above
 * CPython's small ints, so every new key made an int that stayed with its entry (32 bytes a key
 * and an allocation, then a free when the key left) for a value most entries have in common.
 * Ints are immutable: nothing can tell a shared one from a new one. */
#define WEIGHT_INTS 2048
static PyObject *weight_ints[WEIGHT_INTS];

static PyObject *weight_int(long long weight) {
    long long i = weight - ENTRY_OVERHEAD;
    if (i < 0 || i >= WEIGHT_INTS) return PyLong_FromLongLong(weight);
    PyObject *o = weight_ints[i];
    if (o == NULL && (o = weight_ints[i] = PyLong_FromLongLong(weight)) == NULL) return NULL;
    Py_INCREF(o);
    return o;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* Read slot `off` of `obj` (a new reference), or NULL with AttributeError set. */
static PyObject *slot_get(PyObject *obj, Py_ssize_t off, PyObject *name) {
    PyObject *v = SLOT(obj, off);
    if (v == NULL) {
        PyErr_SetObject(PyExc_AttributeError, name);
        return NULL;
    }
    Py_INCREF(v);
    return v;
}

/* Store a new reference in slot `off` (stolen); the old value is released last. */
static void slot_set(PyObject *obj, Py_ssize_t off, PyObject *v) {
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = v;
    Py_XDECREF(old);
}

/* `obj.<slot> += delta` on a LevelStats (any type: the generic attribute protocol). */
static int lvl_add(PyObject *lvl, Py_ssize_t off, PyObject *name, long long delta) {
    if (Py_IS_TYPE(lvl, LevelType)) {
        PyObject *cur = SLOT(lvl, off);
        if (cur != NULL && PyLong_CheckExact(cur)) {
            int overflow = 0;
            long long c = PyLong_AsLongLongAndOverflow(cur, &overflow);
            if (!overflow && !(c == -1 && PyErr_Occurred()) && c < ((long long)1 << 62) &&
                c > -((long long)1 << 62) && delta < ((long long)1 << 61) &&
                delta > -((long long)1 << 61)) {
                PyObject *nv = PyLong_FromLongLong(c + delta);
                if (nv == NULL) return -1;
                slot_set(lvl, off, nv); /* the old int's release runs no Python code */
                return 0;
            }
            PyErr_Clear();
        }
    }
    PyObject *cur = PyObject_GetAttr(lvl, name);
    if (cur == NULL) return -1;
    PyObject *d = PyLong_FromLongLong(delta);
    if (d == NULL) {
        Py_DECREF(cur);
        return -1;
    }
    PyObject *nv = PyNumber_InPlaceAdd(cur, d);
    Py_DECREF(cur);
    Py_DECREF(d);
    if (nv == NULL) return -1;
    int r = PyObject_SetAttr(lvl, name, nv);
    Py_DECREF(nv);
    return r;
}

/* Python truth of `o`: floats and ints without a call. */
static int truth(PyObject *o) {
    if (PyFloat_CheckExact(o)) return PyFloat_AS_DOUBLE(o) != 0.0;
    if (o == Py_None || o == Py_False) return 0;
    if (o == Py_True) return 1;
    return PyObject_IsTrue(o);
}

/* `a < b` (1/0, -1 on error): two floats compared in C, the rest by the protocol. */
static int less(PyObject *a, PyObject *b) {
    if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b))
        return PyFloat_AS_DOUBLE(a) < PyFloat_AS_DOUBLE(b);
    return PyObject_RichCompareBool(a, b, Py_LT);
}

/* A new reference to instance attribute `name` (from the cache's __dict__), NULL if absent
 * (no error set) or NULL with an error. */
static PyObject *iattr(PyObject *dict, PyObject *name) {
    PyObject *v = PyDict_GetItemWithError(dict, name);
    Py_XINCREF(v);
    return v;
}

/* Call the cache's `_policy_hit(name)`; 0, or -1 with an exception. A KeyError means the key
   left (deleted by another thread between the lookup and the hit: set-then-delete order) and is
   not an error. */
static int policy_hit(PyObject *dict, PyObject *name) {
    PyObject *hit = iattr(dict, s_policy_hit);
    if (hit == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_AttributeError, s_policy_hit);
        return -1;
    }
    PyObject *res = PyObject_Vectorcall(hit, &name, 1, NULL);
    Py_DECREF(hit);
    if (res == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(res);
    return 0;
}

/* A new reference to `_core.<name>` (read each call: tests and users may patch them). */
static PyObject *core_global(PyObject *name) {
    PyObject *v = PyDict_GetItemWithError(core_globals, name);
    if (v == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_NameError, name);
        return NULL;
    }
    Py_INCREF(v);
    return v;
}

/* `_time() * 1000.0` as a new reference. */
/* `_time() * 1000.0` as a double read in C, when `_core._time` is the builtin time.time: 1 (*ms
 * set), 0 (it is something else, a patched clock: call it), -1 (error).
 * Why: the call of the builtin, its seconds float and the product float cost ~250 instructions
 * around the clock_gettime(CLOCK_REALTIME) itself; a get hit or new-key set with a TTL pays one.
 * The arithmetic is time.time()'s own (CPython 3.11 _PyTime_AsSecondsDouble), so the double is
 * bit for bit the one `time.time() * 1000.0` gives. */
static int clock_direct(double *ms) {
    PyObject *t = PyDict_GetItemWithError(core_globals, s_time); /* borrowed */
    if (t == NULL) return PyErr_Occurred() ? -1 : 0;
    if (t != orig_time) return 0;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0; /* (Python raises it) */
    long long ns = (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec;
    volatile double d; /* (as CPython: no reassociation of the rounding) */
    if (ns % 1000000000LL == 0) {
        d = (double)(ns / 1000000000LL);
    } else {
        d = (double)ns;
        d /= 1e9;
    }
    *ms = d * 1000.0;
    return 1;
}

static PyObject *clock_ms(void) {
    double ms;
    int direct = clock_direct(&ms);
    if (direct < 0) return NULL;
    if (direct) return PyFloat_FromDouble(ms);
    PyObject *t = core_global(s_time);
    if (t == NULL) return NULL;
    PyObject *r = PyObject_CallNoArgs(t);
    Py_DECREF(t);
    if (r == NULL) return NULL;
    if (PyFloat_CheckExact(r)) {
        double d = PyFloat_AS_DOUBLE(r) * 1000.0;
        Py_DECREF(r);
        return PyFloat_FromDouble(d);
    }
    PyObject *m = PyNumber_Multiply(r, float_1000);
    Py_DECREF(r);
    return m;
}

/* `self._active_expire(_now_ms())`, result dropped. */
static int call_active_expire(PyObject *cache) {
    PyObject *f = core_global(s_now_ms);
    if (f == NULL) return -1;
    PyObject *now = PyObject_CallNoArgs(f);
    Py_DECREF(f);
    if (now == NULL) return -1;
    PyObject *r = PyObject_CallMethodOneArg(cache, s_active_expire, now);
    Py_DECREF(now);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* ------------------------------------------------------------------ the entry
 *
 * `Entry` is _core._Entry where this module is built (the Python class otherwise): the same
 * seven attributes (expire, key, lvl, plain_vw, tags, value, weight), readable, writable and
 * deletable, holding any object, built as `Entry(key, value, expire, lvl, weight, tags,
 * plain_vw)` with `expire` made a float as the Python class' __init__ does.
 *
 * Why a C type: every instance of a Python class is tracked by the cyclic GC, so each new key
 * brought its share of the collector (gen-0/1/2 collections traverse every live entry: ~930
 * instructions a new-key set of a filling cache in callgrind, more in wall time), where
 * cachetools stores the value in a dict and allocates no tracked object. An object that can
 * only refer to atomic objects (str, int, float, bytes, None, ..., and exact tuples of those)
 * cannot be part of a reference cycle, so the collector need not see it: as CPython does for
 * dicts and tuples, an Entry is born untracked when its seven referents are atomic, and is
 * tracked, for good, the moment anything stores one that is not (every setter, the C fast
 * path's overwrite and insert). An untracked entry's references then count as external roots
 * for the collector, which is exactly right for objects that can refer to nothing.
 *
 * `lvl` is a LevelStats (a tracked __slots__ object); it counts as atomic when it is an exact
 * LevelStats whose `level` is an exact CacheLevel with an exact str name and a float or None ttl:
 * its other slots are int counters that only the cache writes, so nothing it refers to can lead
 * back to an entry. Any other `lvl` (a subclass, a CacheLevel subclass that may carry a __dict__)
 * tracks the entry. Tracked entries traverse and clear all seven references.
 */

/* Whether `o` can refer to nothing that could lead back to it (CPython's test for untracking a
 * tuple, _PyObject_GC_MAY_BE_TRACKED, applied to `o` and, for an exact tuple, to its items). */
static inline int atomic(PyObject *o) {
    /* (the type's flag first: str, int, float, bytes, None answer without a call) */
    if (!PyType_IS_GC(Py_TYPE(o)) || !PyObject_IS_GC(o)) return 1;
    if (!PyTuple_CheckExact(o)) return 0;
    if (!PyObject_GC_IsTracked(o)) return 1; /* (CPython untracks only atomic tuples) */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(o); i++) {
        PyObject *it = PyTuple_GET_ITEM(o, i);
        if (it == NULL) return 0;
        if (PyObject_IS_GC(it) && !(PyTuple_CheckExact(it) && !PyObject_GC_IsTracked(it)))
            return 0;
    }
    return 1;
}

static int init_failed = 0; /* ensure_init failed once for lvl_atomic: stop retrying there */

/* Whether a level counts as atomic (see above); the types come from _core (ensure_init). */
static int lvl_atomic(PyObject *lvl) {
    if (!initialized) {
        if (init_failed) return 0;
        if (ensure_init() < 0) {
            PyErr_Clear();
            init_failed = 1;
            return 0;
        }
    }
    if (!Py_IS_TYPE(lvl, LevelType)) return atomic(lvl);
    PyObject *d = SLOT(lvl, off_l_level);
    if (d == NULL || !Py_IS_TYPE(d, LevelDefType)) return 0;
    PyObject *n = SLOT(d, off_d_name), *t = SLOT(d, off_d_ttl);
    return n != NULL && PyUnicode_CheckExact(n) && t != NULL &&
           (t == Py_None || PyFloat_CheckExact(t));
}

/* Track `self` before it stores `v` in its `lvl` (is_lvl) or another attribute, if `v` may lead
 * to a cycle. Once tracked, an entry stays tracked (as a dict does). */
static void entry_track_for(PyObject *self, PyObject *v, int is_lvl) {
    if (v != NULL && !PyObject_GC_IsTracked(self) && !(is_lvl ? lvl_atomic(v) : atomic(v)))
        PyObject_GC_Track(self);
}

/* The entry's memory. An entry is a GC-capable object (it must be, to be tracked once it holds
 * a value that may lead to a cycle), but PyObject_GC_New counts every such allocation towards
 * the collector's generation-0 threshold, tracked or not: a filling cache, whose entries are
 * never freed, ran a gen-0 pass every ~700 new keys (and a gen-1 pass every ~7,000), each
 * walking every young tracked object of the process and charged to the cache's set, where
 * cachetools' LRUCache, which keeps no GC objects a key, runs none. So where the layout is
 * CPython's usual one (checked at import: the GC header is the two zeroed words before an
 * untracked object, which sys.getsizeof counts), an entry is allocated as PyObject_GC_New
 * allocates it (PyObject_Malloc of the header and the object, the header zeroed: untracked)
 * minus the count, and freed as PyObject_GC_Del frees it (untracked first), minus the count.
 * PyObject_GC_Track works on it as on any GC object. An entry that is tracked later is never
 * counted either: the count is a heuristic of how many new containers may hold cycles, and the
 * value that made it tracked was counted when it was made. Elsewhere (the free-threaded build,
 * an unknown layout or version) entries come from PyObject_GC_New. */
static size_t gc_presize = 0; /* the GC header's size once checked (entry_alloc_check); 0: none */

static Entry *entry_alloc(void) {
    if (gc_presize == 0) return PyObject_GC_New(Entry, EntryType);
    char *mem = PyObject_Malloc(gc_presize + sizeof(Entry));
    if (mem == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memset(mem, 0, gc_presize); /* (untracked) */
    Entry *e = (Entry *)(mem + gc_presize);
    PyObject_Init((PyObject *)e, EntryType);
    return e;
}

static void entry_free(Entry *e) {
    if (gc_presize == 0) {
        PyObject_GC_Del(e);
        return;
    }
    PyObject_Free((char *)e - gc_presize);
}

/* Set gc_presize if an untracked entry from PyObject_GC_New has the layout entry_alloc copies:
 * the two words before it zero and sys.getsizeof(entry) == its size + those two words. Once, at
 * import, before any entry exists. 0, or -1 with an exception set. */
static int entry_alloc_check(void) {
#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030F0000
    Entry *probe = PyObject_GC_New(Entry, EntryType);
    if (probe == NULL) return -1;
    probe->expire = probe->key = probe->lvl = probe->plain_vw = probe->tags = probe->value =
        probe->weight = NULL;
    size_t pre = 2 * sizeof(void *);
    const uintptr_t *head = (const uintptr_t *)probe - 2;
    int ok = !PyObject_GC_IsTracked((PyObject *)probe) && head[0] == 0 && head[1] == 0;
    if (ok) {
        PyObject *getsizeof = PySys_GetObject("getsizeof"); /* borrowed */
        PyObject *n = getsizeof ? PyObject_CallOneArg(getsizeof, (PyObject *)probe) : NULL;
        if (n == NULL) PyErr_Clear();
        ok = n != NULL && PyLong_Check(n) && PyLong_AsSsize_t(n) == (Py_ssize_t)(sizeof(Entry) + pre);
        if (PyErr_Occurred()) PyErr_Clear();
        Py_XDECREF(n);
    }
    Py_DECREF(probe); /* (entry_dealloc: PyObject_GC_Del while gc_presize is still 0) */
    gc_presize = ok ? pre : 0;
#endif
    return 0;
}

/* A new entry of (key, value, expire, lvl, weight, tags, plain_vw); `expire` made a float. */
static PyObject *entry_make(PyObject *const *a) {
    PyObject *expire = a[2];
    if (PyFloat_CheckExact(expire)) {
        Py_INCREF(expire);
    } else if ((expire = PyNumber_Float(expire)) == NULL) {
        return NULL;
    }
    /* (untracked, where tp_alloc would track it; see entry_alloc) */
    Entry *e = entry_alloc();
    if (e == NULL) {
        Py_DECREF(expire);
        return NULL;
    }
    Py_INCREF(a[0]);
    e->key = a[0];
    Py_INCREF(a[1]);
    e->value = a[1];
    e->expire = expire;
    Py_INCREF(a[3]);
    e->lvl = a[3];
    Py_INCREF(a[4]);
    e->weight = a[4];
    Py_INCREF(a[5]);
    e->tags = a[5];
    Py_INCREF(a[6]);
    e->plain_vw = a[6];
    if (!(atomic(a[1]) && atomic(a[0]) && atomic(expire) && lvl_atomic(a[3]) &&
          atomic(a[4]) && atomic(a[5]) && atomic(a[6])))
        PyObject_GC_Track(e);
    return (PyObject *)e;
}

static char *entry_kwlist[] = {"key", "value", "expire", "lvl", "weight", "tags", "plain_vw", NULL};

static PyObject *entry_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)type;
    PyObject *a[7];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOO:Entry", entry_kwlist, &a[0], &a[1],
                                     &a[2], &a[3], &a[4], &a[5], &a[6]))
        return NULL;
    return entry_make(a);
}

/* Entry(...) with seven positional arguments, the way the core calls it, without a tuple. */
static PyObject *entry_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && n == 7) return entry_make(args);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *t = PyTuple_New(n), *kw = NULL, *r = NULL;
    if (t == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(t, i, args[i]);
    }
    if (nkw) {
        if ((kw = PyDict_New()) == NULL) goto out;
        for (Py_ssize_t j = 0; j < nkw; j++) {
            if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, j), args[n + j]) < 0) goto out;
        }
    }
    r = entry_new((PyTypeObject *)type, t, kw);
out:
    Py_DECREF(t);
    Py_XDECREF(kw);
    return r;
}

static int entry_traverse(Entry *self, visitproc visit, void *arg) {
    Py_VISIT(self->expire);
    Py_VISIT(self->key);
    Py_VISIT(self->lvl);
    Py_VISIT(self->plain_vw);
    Py_VISIT(self->tags);
    Py_VISIT(self->value);
    Py_VISIT(self->weight);
    return 0;
}

static int entry_clear(Entry *self) {
    Py_CLEAR(self->expire);
    Py_CLEAR(self->key);
    Py_CLEAR(self->lvl);
    Py_CLEAR(self->plain_vw);
    Py_CLEAR(self->tags);
    Py_CLEAR(self->value);
    Py_CLEAR(self->weight);
    return 0;
}

static void entry_dealloc(Entry *self) {
    PyObject_GC_UnTrack(self); /* (a no-op for an untracked entry) */
    entry_clear(self);
    entry_free(self);
}

typedef struct {
    const char *name;
    Py_ssize_t offset;
} EntryField;

static EntryField entry_fields[] = {
    {"expire", offsetof(Entry, expire)}, {"key", offsetof(Entry, key)},
    {"lvl", offsetof(Entry, lvl)},       {"plain_vw", offsetof(Entry, plain_vw)},
    {"tags", offsetof(Entry, tags)},     {"value", offsetof(Entry, value)},
    {"weight", offsetof(Entry, weight)},
};

/* The getter of a field: its value, or the AttributeError of an unset __slots__ slot. */
static PyObject *entry_get(PyObject *self, void *closure) {
    EntryField *f = (EntryField *)closure;
    PyObject *v = SLOT(self, f->offset);
    if (v == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.200s' object has no attribute '%s'",
                     Py_TYPE(self)->tp_name, f->name);
        return NULL;
    }
    Py_INCREF(v);
    return v;
}

/* The setter of a field: track the entry first if `v` may lead to a cycle, store, release the
 * old object last (its __del__ sees the new one stored); `del e.field` as for a slot. */
static int entry_set(PyObject *self, PyObject *v, void *closure) {
    EntryField *f = (EntryField *)closure;
    PyObject *old = SLOT(self, f->offset);
    if (v == NULL) {
        if (old == NULL) {
            PyErr_Format(PyExc_AttributeError, "'%.200s' object has no attribute '%s'",
                         Py_TYPE(self)->tp_name, f->name);
            return -1;
        }
    } else {
        entry_track_for(self, v, f->offset == (Py_ssize_t)offsetof(Entry, lvl));
        Py_INCREF(v);
    }
    SLOT(self, f->offset) = v;
    Py_XDECREF(old);
    return 0;
}

static PyGetSetDef entry_getset[] = {
    {"expire", entry_get, entry_set, "Deadline in ms since the epoch as a float (0.0: none).",
     &entry_fields[0]},
    {"key", entry_get, entry_set, "The key (str).", &entry_fields[1]},
    {"lvl", entry_get, entry_set, "The LevelStats of the entry's level.", &entry_fields[2]},
    {"plain_vw", entry_get, entry_set,
     "The value's weight in the default level without tags, else -2.", &entry_fields[3]},
    {"tags", entry_get, entry_set, "The tags (tuple of str), or None.", &entry_fields[4]},
    {"value", entry_get, entry_set, "The stored value.", &entry_fields[5]},
    {"weight", entry_get, entry_set, "The entry's estimated size in bytes.", &entry_fields[6]},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EntryTypeObj = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "perflayer.cache._fastpath_c.Entry",
    .tp_basicsize = sizeof(Entry),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Entry(key, value, expire, lvl, weight, tags, plain_vw)\n--\n\n"
              "One stored value with its expiry, level, weight and tags (_core._Entry in C; "
              "untracked by the cyclic GC while it refers only to atomic objects).",
    .tp_traverse = (traverseproc)entry_traverse,
    .tp_clear = (inquiry)entry_clear,
    .tp_dealloc = (destructor)entry_dealloc,
    .tp_getset = entry_getset,
    .tp_new = entry_new,
    .tp_vectorcall = entry_vectorcall,
};

/* ------------------------------------------------------------------ the lock
 *
 * `Lock` is the cache's lock where this module is built (_core._new_lock): threading.Lock's API
 * and semantics (acquire(blocking=True, timeout=-1) -> bool, release(), locked(), the context
 * manager; a blocking wait releases the GIL and runs signal handlers, as _thread.lock's does)
 * over the same PyThread_type_lock. Why: the new-key insert called the cache's
 * threading.Lock's acquire and release through their bound methods, ~850 instructions a set
 * (method lookup, argument parsing, the timeout arithmetic) and ~25 L1 instruction-cache misses
 * (callgrind --cache-sim), the largest single item of a new-key set; the C paths here take a
 * `Lock` with one non-blocking PyThread_acquire_lock_timed and release it with
 * PyThread_release_lock, and fall back to the methods for any other lock object. */

typedef struct {
    PyObject_HEAD
    PyThread_type_lock lk;
    char locked;
} Lock;

static PyTypeObject LockType;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Take the lock: 1 acquired, 0 not (timeout or non-blocking), -1 error (a signal handler
 * raised). `timeout` < 0: wait forever; 0: do not wait. As _threadmodule.c's acquire_timed: a
 * non-blocking try with the GIL held first, then a wait with the GIL released, restarted with
 * the remaining time after running the pending calls when a signal interrupts it. */
static int lock_take(Lock *self, double timeout) {
    PyLockStatus r = PyThread_acquire_lock_timed(self->lk, 0, 0);
    if (r == PY_LOCK_FAILURE && timeout != 0) {
        double deadline = timeout > 0 ? mono_s() + timeout : 0.0;
        for (;;) {
            long long us = -1;
            if (timeout > 0) {
                double left = deadline - mono_s();
                us = left <= 0 ? 0 : (long long)(left * 1e6 + 0.999999);
            }
            Py_BEGIN_ALLOW_THREADS
            r = PyThread_acquire_lock_timed(self->lk, (PY_TIMEOUT_T)us, 1);
            Py_END_ALLOW_THREADS
            if (r != PY_LOCK_INTR) break;
            if (Py_MakePendingCalls() < 0) return -1;
            if (timeout > 0 && mono_s() >= deadline) {
                r = PyThread_acquire_lock_timed(self->lk, 0, 0);
                break;
            }
        }
    }
    if (r == PY_LOCK_ACQUIRED) {
        self->locked = 1;
        return 1;
    }
    return 0;
}

/* The fast paths' acquire/release of the cache's lock: a `Lock` directly, anything else by its
 * methods. 0 or -1. */
static int cache_lock_acquire(PyObject *lock) {
    if (Py_IS_TYPE(lock, &LockType)) {
        Lock *l = (Lock *)lock;
        if (PyThread_acquire_lock_timed(l->lk, 0, 0) == PY_LOCK_ACQUIRED) {
            l->locked = 1;
            return 0;
        }
        return lock_take(l, -1) > 0 ? 0 : -1;
    }
    PyObject *r = PyObject_CallMethodNoArgs(lock, s_acquire);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

static int cache_lock_release(PyObject *lock) {
    if (Py_IS_TYPE(lock, &LockType)) {
        Lock *l = (Lock *)lock;
        if (!l->locked) {
            PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
            return -1;
        }
        l->locked = 0;
        PyThread_release_lock(l->lk);
        return 0;
    }
    PyObject *r = PyObject_CallMethodNoArgs(lock, s_release);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

static PyObject *lock_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    if ((args != NULL && PyTuple_GET_SIZE(args) != 0) || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Lock() takes no arguments");
        return NULL;
    }
    Lock *self = (Lock *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->locked = 0;
    self->lk = PyThread_allocate_lock();
    if (self->lk == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_MemoryError, "can't allocate lock");
        return NULL;
    }
    return (PyObject *)self;
}

static void lock_dealloc(Lock *self) {
    if (self->lk != NULL) {
        if (self->locked) PyThread_release_lock(self->lk); /* (as _thread.lock's dealloc) */
        PyThread_free_lock(self->lk);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static char *lock_kwlist[] = {"blocking", "timeout", NULL};

static PyObject *lock_acquire(Lock *self, PyObject *args, PyObject *kwds) {
    int blocking = 1;
    double timeout = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pd:acquire", lock_kwlist, &blocking, &timeout))
        return NULL;
    if (!blocking && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return NULL;
    }
    if (timeout < 0 && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
        return NULL;
    }
    if (!blocking) {
        timeout = 0;
    } else if (timeout > (double)PY_TIMEOUT_MAX / 1e6) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return NULL;
    }
    int r = lock_take(self, timeout);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

static PyObject *lock_enter(Lock *self, PyObject *unused) {
    (void)unused;
    if (PyThread_acquire_lock_timed(self->lk, 0, 0) == PY_LOCK_ACQUIRED) {
        self->locked = 1;
        Py_RETURN_TRUE;
    }
    int r = lock_take(self, -1);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

static PyObject *lock_release(Lock *self, PyObject *unused) {
    (void)unused;
    if (cache_lock_release((PyObject *)self) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *lock_exit(Lock *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)args;
    (void)nargs;
    if (cache_lock_release((PyObject *)self) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *lock_locked(Lock *self, PyObject *unused) {
    (void)unused;
    return PyBool_FromLong(self->locked);
}

static PyObject *lock_repr(Lock *self) {
    return PyUnicode_FromFormat("<%s %s object at %p>", self->locked ? "locked" : "unlocked",
                                Py_TYPE(self)->tp_name, self);
}

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_VARARGS | METH_KEYWORDS,
     "Acquire the lock (threading.Lock.acquire): True if taken, False on timeout."},
    {"release", (PyCFunction)lock_release, METH_NOARGS,
     "Release the lock; RuntimeError if it is not locked."},
    {"locked", (PyCFunction)lock_locked, METH_NOARGS, "Return whether the lock is held."},
    {"__enter__", (PyCFunction)lock_enter, METH_NOARGS, "Acquire the lock (blocking)."},
    {"__exit__", (PyCFunction)(void (*)(void))lock_exit, METH_FASTCALL, "Release the lock."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "perflayer.cache._fastpath_c.Lock",
    .tp_basicsize = sizeof(Lock),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A threading.Lock the C fast paths take without a method call (the cache's lock).",
    .tp_new = lock_new,
    .tp_dealloc = (destructor)lock_dealloc,
    .tp_repr = (reprfunc)lock_repr,
    .tp_methods = lock_methods,
};

/* ------------------------------------------------------------------ the holder */

typedef struct {
    PyObject_HEAD
    PyObject *cache; /* the Cache */
    PyObject *dict;                /* its instance __dict__ */
} Holder;

static int holder_traverse(Holder *self, visitproc visit, void *arg) {
    Py_VISIT(self->cache);
    Py_VISIT(self->dict);
    return 0;
}

static int holder_clear(Holder *self) {
    Py_CLEAR(self->cache);
    Py_CLEAR(self->dict);
    return 0;
}

static void holder_dealloc(Holder *self) {
    PyObject_GC_UnTrack(self);
    holder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *holder_repr(Holder *self) {
    if (self->cache == NULL) return PyUnicode_FromString("<_fastpath_c holder (cleared)>");
    return PyUnicode_FromFormat("<_fastpath_c holder of %R>", self->cache);
}

static PyTypeObject HolderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "perflayer.cache._fastpath_c.Holder",
    .tp_basicsize = sizeof(Holder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The cache a fast get/set is bound to.",
    .tp_traverse = (traverseproc)holder_traverse,
    .tp_clear = (inquiry)holder_clear,
    .tp_dealloc = (destructor)holder_dealloc,
    .tp_repr = (reprfunc)holder_repr,
};

/* Check the holder is live; return its cache and dict as new references. */
static int holder_parts(PyObject *h, PyObject **cache, PyObject **dict) {
    Holder *self = (Holder *)h;
    if (self->cache == NULL || self->dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fastpath_c: the bound cache was cleared");
        return -1;
    }
    *cache = self->cache;
    *dict = self->dict;
    Py_INCREF(*cache);
    Py_INCREF(*dict);
    return 0;
}

/* ------------------------------------------------------------------ get */

/* `type(cache).get(cache, name)`: the Python method, for every case the C path does not take. */
static PyObject *py_get(PyObject *cache, PyObject *name) {
    PyObject *f = PyObject_GetAttr((PyObject *)Py_TYPE(cache), s_get);
    if (f == NULL) return NULL;
    PyObject *args[2] = {cache, name};
    PyObject *r = PyObject_Vectorcall(f, args, 2, NULL);
    Py_DECREF(f);
    return r;
}

static PyObject *do_get(PyObject *cache, PyObject *dict, PyObject *name) {
    PyObject *data = iattr(dict, s_data);
    if (data == NULL) {
        if (PyErr_Occurred()) return NULL;
        return py_get(cache, name);
    }
    if (!PyDict_CheckExact(data)) {
        Py_DECREF(data);
        return py_get(cache, name);
    }
    PyObject *e = PyDict_GetItemWithError(data, name);
    Py_XINCREF(e);
    Py_DECREF(data);
    if (e == NULL) {
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError)) return NULL;
            /* unhashable: _get_miss raises CacheKeyError naming it */
            PyErr_Clear();
            return PyObject_CallMethodOneArg(cache, s_get_miss, name);
        }
        if (!PyUnicode_CheckExact(name)) return PyObject_CallMethodOneArg(cache, s_get_miss, name);
        /* _get_miss's common case, inlined: self._default.misses += 1; self._policy_miss(name) */
        PyObject *dflt = iattr(dict, s_default);
        if (dflt == NULL) {
            if (PyErr_Occurred()) return NULL;
            return PyObject_CallMethodOneArg(cache, s_get_miss, name);
        }
        int r = lvl_add(dflt, off_l_misses, s_misses, 1);
        Py_DECREF(dflt);
        if (r < 0) return NULL;
        PyObject *miss = iattr(dict, s_policy_miss);
        if (miss == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_AttributeError, s_policy_miss);
            return NULL;
        }
        PyObject *res = PyObject_Vectorcall(miss, &name, 1, NULL);
        Py_DECREF(miss);
        if (res == NULL) return NULL;
        Py_DECREF(res);
        Py_RETURN_NONE;
    }
    if (!Py_IS_TYPE(e, EntryType) || SLOT(e, off_e_expire) == NULL ||
        SLOT(e, off_e_lvl) == NULL || SLOT(e, off_e_value) == NULL) {
        Py_DECREF(e);
        return py_get(cache, name);
    }
    PyObject *exp = SLOT(e, off_e_expire);
    /* entries without a TTL skip the clock read entirely */
    if (PyFloat_CheckExact(exp)) {
        double x = PyFloat_AS_DOUBLE(exp);
        if (x != 0.0) {
            double nowd;
            int lt = clock_direct(&nowd); /* (no Python code runs in it) */
            if (lt < 0) goto fail;
            if (lt) {
                lt = x < nowd;
            } else {
                PyObject *now = clock_ms();
                if (now == NULL) goto fail;
                if (PyFloat_CheckExact(now)) {
                    lt = x < PyFloat_AS_DOUBLE(now);
                } else {
                    Py_INCREF(exp);
                    lt = PyObject_RichCompareBool(exp, now, Py_LT);
                    Py_DECREF(exp);
                }
                Py_DECREF(now);
            }
            if (lt < 0) goto fail;
            if (lt) {
                Py_DECREF(e);
                return PyObject_CallMethodOneArg(cache, s_get_expired, name);
            }
        }
    } else {
        /* an expiry of an unexpected type: the Python method decides */
        Py_DECREF(e);
        return py_get(cache, name);
    }
    /* No lock on a hit: no Python code runs from the lookup to the slot stores below (the
     * clock is a builtin, the slot increment is C, the policy's hit is lock-free). */
    {
        PyObject *lvl = SLOT(e, off_e_lvl);
        if (lvl == NULL) {
            /* (cleared by a __del__ run by the clock patched in Python: Python's AttributeError) */
            PyErr_SetObject(PyExc_AttributeError, s_lvl);
            goto fail;
        }
        Py_INCREF(lvl);
        int r = lvl_add(lvl, off_l_hits, s_hits, 1);
        Py_DECREF(lvl);
        if (r < 0) goto fail;
    }
    if (policy_hit(dict, name) < 0) goto fail;
    {
        PyObject *v = slot_get(e, off_e_value, s_get);
        Py_DECREF(e);
        return v;
    }
fail:
    Py_DECREF(e);
    return NULL;
}

static PyObject *fast_get_call(PyObject *h, PyObject *name) {
    PyObject *cache, *dict;
    if (holder_parts(h, &cache, &dict) < 0) return NULL;
    PyObject *r = do_get(cache, dict, name);
    Py_DECREF(cache);
    Py_DECREF(dict);
    return r;
}

static PyMethodDef fast_get_def = {"get", (PyCFunction)fast_get_call, METH_O,
                                   "Return the value at ``name``, or None (GET; C fast path)."};

/* ------------------------------------------------------------------ set */

/* `type(cache).set(cache, *args, **kw)`: the Python method, with the call's own arguments. */
static PyObject *py_set(PyObject *cache, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *f = PyObject_GetAttr((PyObject *)Py_TYPE(cache), s_set);
    if (f == NULL) return NULL;
    PyObject *small[16];
    PyObject **buf = small;
    if (nargs + nkw + 1 > 16) {
        buf = PyMem_Malloc(sizeof(PyObject *) * (size_t)(nargs + nkw + 1));
        if (buf == NULL) {
            Py_DECREF(f);
            return PyErr_NoMemory();
        }
    }
    buf[0] = cache;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) buf[i + 1] = args[i];
    PyObject *r = PyObject_Vectorcall(f, buf, (size_t)(nargs + 1), kwnames);
    if (buf != small) PyMem_Free(buf);
    Py_DECREF(f);
    return r;
}

/* A plain option value: None/False/0 (0), True/ints != 0 (1), anything else (-1: let Python
 * evaluate it, so a __bool__ runs exactly once). */
static int plain_flag(PyObject *o) {
    if (o == NULL || o == Py_None || o == Py_False) return 0;
    if (o == Py_True) return 1;
    if (PyLong_CheckExact(o)) return Py_SIZE(o) != 0;
    return -1;
}

/* Call a method of the cache with `n` positional arguments; result dropped. */
static int call_method_n(PyObject *cache, PyObject *name, PyObject **argv, size_t n) {
    PyObject *buf[9];
    buf[0] = cache;
    for (size_t i = 0; i < n; i++) buf[i + 1] = argv[i];
    PyObject *r = PyObject_VectorcallMethod(name, buf, n + 1, NULL);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* `getattr(self, name)` for an attribute the instance dict must hold (new reference). */
static PyObject *need_iattr(PyObject *dict, PyObject *name) {
    PyObject *v = iattr(dict, name);
    if (v == NULL && !PyErr_Occurred()) PyErr_SetObject(PyExc_AttributeError, name);
    return v;
}

/* Cache._fold_fresh in C (lock held): the same reads, order, branches and writes, line by line
 * (read its docstring for the why). The Python loop cost ~890 instructions a key, about as much
 * per new-key set of a filling cache (it runs every _FRESH_MAX keys); here a key costs a dict
 * lookup, a slot read, a float compare and two deque appends (deque.append's C function for a
 * deque, else the bound `append`, fetched once a fold): ~270 (callgrind). A `_fold_fresh` of the
 * instance or of a subclass, or a `_fresh` other than a list, calls the Python method instead;
 * `_rebuild_heap` and `_heappush` stay Python's (read afresh, as the method reads them). Every
 * object read is held by a strong reference while Python code can run (a str subclass key's
 * __eq__, a tuple compare in the heap push). */
static int fold_fresh(PyObject *cache, PyObject *dict) {
    PyObject *own = PyDict_GetItemWithError(dict, s_fold_fresh); /* borrowed, not kept */
    if (own == NULL && PyErr_Occurred()) return -1;
    if (own != NULL || _PyType_Lookup(Py_TYPE(cache), s_fold_fresh) != orig_fold)
        return call_method_n(cache, s_fold_fresh, NULL, 0);
    PyObject *fresh = need_iattr(dict, s_fresh);
    if (fresh == NULL) return -1;
    if (!PyList_CheckExact(fresh)) {
        Py_DECREF(fresh);
        return call_method_n(cache, s_fold_fresh, NULL, 0);
    }
    if (PyList_GET_SIZE(fresh) == 0) { /* `if fresh:` */
        Py_DECREF(fresh);
        return 0;
    }
    int rc = -1;
    PyObject *data = NULL, *heap = NULL, *run_keys = NULL, *run_when = NULL, *tail = NULL;
    PyObject *kapp = NULL, *wapp = NULL, *push = NULL;
    if ((data = need_iattr(dict, s_data)) == NULL ||
        (heap = need_iattr(dict, s_expiry_heap)) == NULL ||
        (run_keys = need_iattr(dict, s_run_keys)) == NULL ||
        (run_when = need_iattr(dict, s_run_when)) == NULL ||
        (tail = need_iattr(dict, s_run_tail)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(fresh); i++) { /* (the list may change) */
        PyObject *key = PyList_GET_ITEM(fresh, i);
        Py_INCREF(key);
        PyObject *e; /* e = data.get(key) */
        if (PyDict_CheckExact(data)) {
            e = PyDict_GetItemWithError(data, key);
            Py_XINCREF(e);
        } else {
            e = PyObject_CallMethodOneArg(data, s_get, key);
            if (e == Py_None) Py_CLEAR(e);
            else if (e == NULL) goto fail_key;
        }
        if (e == NULL) {
            if (PyErr_Occurred()) goto fail_key;
            Py_DECREF(key);
            continue;
        }
        PyObject *when = Py_IS_TYPE(e, EntryType) ? slot_get(e, off_e_expire, s_expire)
                                                  : PyObject_GetAttr(e, s_expire);
        Py_DECREF(e);
        if (when == NULL) goto fail_key;
        int t = truth(when);
        if (t > 0) {
            int ge = (PyFloat_CheckExact(when) && PyFloat_CheckExact(tail))
                         ? PyFloat_AS_DOUBLE(when) >= PyFloat_AS_DOUBLE(tail)
                         : PyObject_RichCompareBool(when, tail, Py_GE);
            if (ge > 0 && deque_append != NULL && Py_IS_TYPE(run_keys, DequeType) &&
                Py_IS_TYPE(run_when, DequeType)) {
                /* why: deque.append's own C function, not a call through its bound method:
                 * ~110 -> ~50 instructions an append (callgrind); it runs no Python code */
                PyObject *r = deque_append(run_keys, key);
                if (r != NULL) {
                    Py_DECREF(r);
                    r = deque_append(run_when, when);
                }
                if (r != NULL) {
                    Py_DECREF(r);
                    Py_INCREF(when);
                    Py_SETREF(tail, when);
                } else {
                    t = -1;
                }
            } else if (ge > 0) {
                PyObject *r = NULL;
                if ((kapp != NULL || (kapp = PyObject_GetAttr(run_keys, s_append)) != NULL) &&
                    (r = PyObject_CallOneArg(kapp, key)) != NULL) {
                    Py_DECREF(r);
                    if ((wapp != NULL || (wapp = PyObject_GetAttr(run_when, s_append)) != NULL) &&
                        (r = PyObject_CallOneArg(wapp, when)) != NULL) {
                        Py_DECREF(r);
                        Py_INCREF(when);
                        Py_SETREF(tail, when);
                    } else {
                        t = -1;
                    }
                } else {
                    t = -1;
                }
            } else if (ge == 0) {
                PyObject *item = NULL, *r = NULL;
                if ((push != NULL || (push = core_global(s_heappush)) != NULL) &&
                    (item = PyTuple_Pack(2, when, key)) != NULL) {
                    PyObject *argv[2] = {heap, item};
                    r = PyObject_Vectorcall(push, argv, 2, NULL);
                }
                Py_XDECREF(item);
                if (r == NULL) t = -1;
                Py_XDECREF(r);
            } else {
                t = -1;
            }
        }
        Py_DECREF(when);
        if (t < 0) goto fail_key;
        Py_DECREF(key);
        continue;
    fail_key:
        Py_DECREF(key);
        goto done;
    }
    if (PyObject_SetAttr(cache, s_run_tail, tail) < 0) goto done;
    if (PyList_SetSlice(fresh, 0, PY_SSIZE_T_MAX, NULL) < 0) goto done; /* fresh.clear() */
    {
        Py_ssize_t nh = PyObject_Size(heap), nr, nd;
        if (nh < 0 || (nr = PyObject_Size(run_keys)) < 0 || (nd = PyObject_Size(data)) < 0)
            goto done;
        /* Cache._schedule_bound(): 3 x live keys + 1,024 */
        if (nh + nr > 3 * nd + 1024 && call_method_n(cache, s_rebuild_heap, NULL, 0) < 0)
            goto done;
    }
    rc = 0;
done:
    Py_DECREF(fresh);
    Py_XDECREF(data);
    Py_XDECREF(heap);
    Py_XDECREF(run_keys);
    Py_XDECREF(run_when);
    Py_XDECREF(tail);
    Py_XDECREF(kapp);
    Py_XDECREF(wapp);
    Py_XDECREF(push);
    return rc;
}

/* `self.<name> = v` for an attribute kept in the instance __dict__ `dict`: a store in that dict
 * when the type neither overrides __setattr__ nor has an attribute `name` (a descriptor), as
 * object.__setattr__ then does; else the protocol. 0 or -1. */
static int set_iattr(PyObject *cache, PyObject *dict, PyObject *name, PyObject *v) {
    PyTypeObject *tp = Py_TYPE(cache);
    if (tp->tp_setattro == PyObject_GenericSetAttr && _PyType_Lookup(tp, name) == NULL)
        return PyDict_SetItem(dict, name, v);
    return PyObject_SetAttr(cache, name, v);
}

/* The new-key insert's schedule of a cache that evicted nothing (Cache.set, "nothing left the
 * cache"): the run if `when` is no earlier than its tail, else the heap; the same reads, order and
 * writes as the Python lines, no bound check. 0 or -1. */
static int schedule_new(PyObject *cache, PyObject *dict, PyObject *key, PyObject *when) {
    PyObject *tail = need_iattr(dict, s_run_tail);
    if (tail == NULL) return -1;
    int ge = (PyFloat_CheckExact(when) && PyFloat_CheckExact(tail))
                 ? PyFloat_AS_DOUBLE(when) >= PyFloat_AS_DOUBLE(tail)
                 : PyObject_RichCompareBool(when, tail, Py_GE);
    Py_DECREF(tail);
    if (ge < 0) return -1;
    if (!ge) { /* _heappush(self._expiry_heap, (expire, name)) */
        PyObject *heap = need_iattr(dict, s_expiry_heap), *push = NULL, *item = NULL, *r = NULL;
        if (heap != NULL && (push = core_global(s_heappush)) != NULL &&
            (item = PyTuple_Pack(2, when, key)) != NULL) {
            PyObject *argv[2] = {heap, item};
            r = PyObject_Vectorcall(push, argv, 2, NULL);
        }
        Py_XDECREF(heap);
        Py_XDECREF(push);
        Py_XDECREF(item);
        if (r == NULL) return -1;
        Py_DECREF(r);
        return 0;
    }
    PyObject *run[2] = {s_run_keys, s_run_when}, *item[2] = {key, when};
    for (int i = 0; i < 2; i++) { /* self._run_keys.append(name); self._run_when.append(expire) */
        PyObject *q = need_iattr(dict, run[i]);
        if (q == NULL) return -1;
        PyObject *r = (deque_append != NULL && Py_IS_TYPE(q, DequeType))
                          ? deque_append(q, item[i]) /* (see fold_fresh) */
                          : PyObject_CallMethodOneArg(q, s_append, item[i]);
        Py_DECREF(q);
        if (r == NULL) return -1;
        Py_DECREF(r);
    }
    return set_iattr(cache, dict, s_run_tail, when); /* self._run_tail = expire */
}

/* `due < now`, with this call's clock read as the float `now`, or (NULL) as the double `now_d`. */
static int due_before(PyObject *due, PyObject *now, double now_d) {
    if (now != NULL) return less(due, now);
    if (PyFloat_CheckExact(due)) return PyFloat_AS_DOUBLE(due) < now_d;
    PyObject *n = PyFloat_FromDouble(now_d);
    if (n == NULL) return -1;
    int r = PyObject_RichCompareBool(due, n, Py_LT);
    Py_DECREF(n);
    return r;
}

/* LRUPolicy.add(key, w) of an exact LRUPolicy `p` for a str key, in C, in the one case of a cache
 * filling up: the key absent, no weight bound, room for one more key. Then the method's effects
 * in its order (`order.get(key)`, `order[key] = w`, `self._total += w`) and its answer `[]` as
 * None (0 victims: see policy_add_c). Returns 1 done, 0 not that case (nothing changed: the
 * caller calls the method), -1 an error. Why: a filling LRU cache's add was a Python frame
 * (~3,800 instructions) around the same two OrderedDict calls. */
static int lru_fill(PyObject *p, PyObject *key, PyObject *w) {
    PyObject *order = SLOT(p, off_lru_order), *tot = SLOT(p, off_lru_total);
    PyObject *me = SLOT(p, off_lru_max_entries), *mw = SLOT(p, off_lru_max_weight);
    if (order == NULL || !PyODict_CheckExact(order) || tot == NULL || !PyLong_CheckExact(tot) ||
        me == NULL || mw != Py_None || !PyLong_CheckExact(w))
        return 0;
    int ovf = 0;
    if (me != Py_None) {
        if (!PyLong_CheckExact(me)) return 0;
        long long m = PyLong_AsLongLongAndOverflow(me, &ovf);
        if (ovf || (m == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0;
        }
        if ((long long)PyDict_GET_SIZE(order) + 1 > m) return 0; /* it would evict */
    }
    long long t = PyLong_AsLongLongAndOverflow(tot, &ovf);
    if (ovf || (t == -1 && PyErr_Occurred()) || t > ((long long)1 << 62) ||
        t < -((long long)1 << 62)) {
        PyErr_Clear();
        return 0;
    }
    long long wv = PyLong_AsLongLongAndOverflow(w, &ovf);
    if (ovf || (wv == -1 && PyErr_Occurred()) || wv > ((long long)1 << 61) ||
        wv < -((long long)1 << 61)) {
        PyErr_Clear();
        return 0;
    }
    /* old = order.get(key) (an OrderedDict keeps its items in its dict) */
    PyObject *old = PyDict_GetItemWithError(order, key);
    if (old != NULL) return 0; /* resident: the method moves it */
    if (PyErr_Occurred()) return -1;
    PyObject *nt = PyLong_FromLongLong(t + wv);
    if (nt == NULL) return -1;
    if (PyODict_SetItem(order, key, w) < 0) { /* order[key] = weight */
        Py_DECREF(nt);
        return -1;
    }
    slot_set(p, off_lru_total, nt); /* self._total += weight */
    return 1;
}

/* The new-key insert under the lock (the lock is held by the caller). Returns 0 or -1. `w` is
 * `weight` as an int (the new entry's own), `now`/`now_d` this call's clock read (see
 * due_before; read only when `expire` is set). */
static int insert_locked(PyObject *cache, PyObject *dict, PyObject *data, PyObject *name,
                         PyObject *value, PyObject *expire, PyObject *now, double now_d,
                         PyObject *dflt, PyObject *new, PyObject *w, long long weight,
                         long long vw) {
    /* `if name in data: ... else: data[name] = new`, in one lookup */
    PyObject *cur = PyDict_SetDefault(data, name, new); /* borrowed */
    if (cur == NULL) return -1;
    if (cur != new) { /* another thread stored it since the lookup above */
        Py_INCREF(cur);
        PyObject *v = PyLong_FromLongLong(vw);
        int r = -1;
        if (v != NULL) {
            PyObject *argv[8] = {name, value, expire, dflt, Py_None, w, cur, v};
            r = call_method_n(cache, s_store, argv, 8);
        }
        Py_XDECREF(v);
        Py_DECREF(cur);
        return r;
    }
    PyObject *add = iattr(dict, s_policy_add);
    if (add == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_AttributeError, s_policy_add);
        return -1;
    }
    PyObject *victims;
    if (policy_capi != NULL && PyCFunction_Check(add) &&
        PyCFunction_GET_FUNCTION(add) == policy_capi->add_method &&
        PyCFunction_GET_SELF(add) != NULL && policy_capi->is_policy(PyCFunction_GET_SELF(add))) {
        /* the policy: `_policy_add` is the bound `add` of the C TinyLFUPolicy, called in C (no
         * method call) and answering None instead of a new empty list when nothing leaves
         * (a filling cache made, truth-tested and freed one list a key); the same decisions */
        victims = policy_capi->add(PyCFunction_GET_SELF(add), name, w);
        Py_DECREF(add);
    } else {
        int done = 0;
        if (lru_add_fn != NULL && PyMethod_Check(add) && PyMethod_GET_FUNCTION(add) == lru_add_fn &&
            Py_IS_TYPE(PyMethod_GET_SELF(add), LRUType)) {
            /* the bound LRUPolicy.add: a filling cache's add in C (lru_fill) */
            done = lru_fill(PyMethod_GET_SELF(add), name, w);
            if (done < 0) {
                Py_DECREF(add);
                return -1;
            }
        }
        if (done) {
            victims = Py_None;
            Py_INCREF(victims);
        } else {
            PyObject *argv[2] = {name, w};
            victims = PyObject_Vectorcall(add, argv, 2, NULL);
        }
        Py_DECREF(add);
    }
    if (victims == NULL) return -1;
    long long n = 1;
    int vt = truth(victims);
    if (vt < 0) goto fail_victims;
    if (vt) {
        /* _evict() and _unlink(), inlined for the size eviction of a full cache */
        PyObject *it = PyObject_GetIter(victims);
        if (it == NULL) goto fail_victims;
        PyObject *k;
        while ((k = PyIter_Next(it)) != NULL) {
            /* old = data.pop(k, None) */
            PyObject *old = PyDict_GetItemWithError(data, k);
            if (old == NULL) {
                Py_DECREF(k);
                if (PyErr_Occurred()) break;
                continue;
            }
            Py_INCREF(old);
            if (PyDict_DelItem(data, k) < 0) {
                if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                    Py_DECREF(old);
                    Py_DECREF(k);
                    break;
                }
                PyErr_Clear();
            }
            int bad = 0;
            PyObject *lvl = NULL, *ow = NULL, *tags = NULL;
            if (Py_IS_TYPE(old, EntryType)) {
                lvl = SLOT(old, off_e_lvl);
                ow = SLOT(old, off_e_weight);
                tags = SLOT(old, off_e_tags);
                Py_XINCREF(lvl);
                Py_XINCREF(ow);
                Py_XINCREF(tags);
            } else {
                lvl = PyObject_GetAttr(old, s_lvl);
                if (lvl != NULL) ow = PyObject_GetAttr(old, s_weight);
                if (ow != NULL) tags = PyObject_GetAttr(old, s_tags);
            }
            if (lvl == NULL || ow == NULL || tags == NULL) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "lvl");
                bad = 1;
            }
            if (!bad && lvl_add(lvl, off_l_evicted_size, s_evicted_size, 1) < 0) bad = 1;
            if (!bad) {
                int ovf = 0;
                long long w = PyLong_Check(ow) ? PyLong_AsLongLongAndOverflow(ow, &ovf) : 0;
                if (!PyLong_Check(ow) || ovf || (w == -1 && PyErr_Occurred())) {
                    if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_TypeError, "_fastpath_c: an entry weight is not an int");
                    bad = 1;
                } else if (lvl == dflt) {
                    /* a victim of the default level cancels the new key's entry count */
                    weight -= w;
                    n -= 1;
                } else if (lvl_add(lvl, off_l_entries, s_entries, -1) < 0 ||
                           lvl_add(lvl, off_l_bytes, s_bytes, -w) < 0) {
                    bad = 1;
                }
            }
            if (!bad) {
                int tt = truth(tags);
                if (tt < 0) {
                    bad = 1;
                } else if (tt) {
                    PyObject *argv[2] = {k, tags};
                    if (call_method_n(cache, s_untag, argv, 2) < 0) bad = 1;
                }
            }
            Py_XDECREF(lvl);
            Py_XDECREF(ow);
            Py_XDECREF(tags);
            Py_DECREF(k);
            Py_DECREF(old); /* (may run a value's __del__) */
            if (bad) break;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) goto fail_victims;
    }
    Py_DECREF(victims);
    if (n && lvl_add(dflt, off_l_entries, s_entries, n) < 0) return -1;
    if (lvl_add(dflt, off_l_bytes, s_bytes, weight) < 0) return -1;
    int et = truth(expire);
    if (et < 0) return -1;
    if (et && !vt) {
        /* nothing left the cache (it is filling): schedule it now (see Cache.set) */
        if (schedule_new(cache, dict, name, expire) < 0) return -1;
    } else if (et) {
        /* (see _fold_fresh for why a list, not the heap, while keys leave) */
        PyObject *fresh = iattr(dict, s_fresh);
        if (fresh == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_AttributeError, s_fresh);
            return -1;
        }
        Py_ssize_t len;
        if (PyList_CheckExact(fresh)) {
            if (PyList_Append(fresh, name) < 0) {
                Py_DECREF(fresh);
                return -1;
            }
            len = PyList_GET_SIZE(fresh);
        } else {
            PyObject *r = PyObject_CallMethodOneArg(fresh, s_append, name);
            if (r == NULL) {
                Py_DECREF(fresh);
                return -1;
            }
            Py_DECREF(r);
            len = PyObject_Size(fresh);
            if (len < 0) {
                Py_DECREF(fresh);
                return -1;
            }
        }
        Py_DECREF(fresh);
        if (len >= FRESH_MAX && fold_fresh(cache, dict) < 0) return -1;
    }
    if (et) {
        PyObject *due = iattr(dict, s_due);
        if (due == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_AttributeError, s_due);
            return -1;
        }
        /* reuse this call's clock read, not a second one */
        int lt = due_before(due, now, now_d);
        if (lt < 0) {
            Py_DECREF(due);
            return -1;
        }
        if (lt) {
            Py_DECREF(due);
            return call_active_expire(cache); /* (its fold takes this key along) */
        }
        lt = less(expire, due);
        Py_DECREF(due);
        if (lt < 0) return -1;
        if (lt) return PyObject_SetAttr(cache, s_due, expire);
        return 0;
    }
    PyObject *due = iattr(dict, s_due);
    if (due == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_AttributeError, s_due);
        return -1;
    }
    int run;
    if (PyFloat_CheckExact(due)) {
        double d = PyFloat_AS_DOUBLE(due);
        if (d < Py_HUGE_VAL) {
            PyObject *c = clock_ms();
            if (c == NULL) {
                Py_DECREF(due);
                return -1;
            }
            run = less(due, c);
            Py_DECREF(c);
        } else {
            run = 0;
        }
    } else {
        PyObject *inf = PyFloat_FromDouble(Py_HUGE_VAL);
        run = inf ? less(due, inf) : -1;
        Py_XDECREF(inf);
        if (run > 0) {
            PyObject *c = clock_ms();
            run = c ? less(due, c) : -1;
            Py_XDECREF(c);
        }
    }
    Py_DECREF(due);
    if (run < 0) return -1;
    if (run) return call_active_expire(cache);
    return 0;
fail_victims:
    Py_DECREF(victims);
    return -1;
}

static PyObject *do_set(PyObject *cache, PyObject *dict, PyObject *const *args, size_t nargsf,
                        PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[NPARAMS] = {NULL};
    if (nargs > NPARAMS) return py_set(cache, args, nargsf, kwnames);
    for (Py_ssize_t i = 0; i < nargs; i++) a[i] = args[i];
    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t j = 0; j < nkw; j++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, j);
            int found = -1;
            for (int i = 0; i < NPARAMS; i++) {
                if (kw == param_str[i]) {
                    found = i;
                    break;
                }
            }
            if (found < 0) {
                for (int i = 0; i < NPARAMS; i++) {
                    if (PyUnicode_Check(kw) && PyUnicode_Compare(kw, param_str[i]) == 0) {
                        found = i;
                        break;
                    }
                }
                if (PyErr_Occurred()) return NULL;
            }
            /* unknown or repeated keywords: Python's own TypeError */
            if (found < 0 || a[found] != NULL) return py_set(cache, args, nargsf, kwnames);
            a[found] = args[nargs + j];
        }
    }
    PyObject *name = a[0], *value = a[1], *ex = a[2];
    if (name == NULL || value == NULL) return py_set(cache, args, nargsf, kwnames);
    /* the plain SET (optionally with an int ``ex``) is the common case; any other option
     * (or an option value whose truth would run Python code) goes to the Python method */
    for (int i = 4; i <= 7; i++) {
        if (plain_flag(a[i]) != 0) return py_set(cache, args, nargsf, kwnames);
    }
    if ((a[3] && a[3] != Py_None) || (a[8] && a[8] != Py_None) || (a[9] && a[9] != Py_None) ||
        (a[10] && a[10] != Py_None) || (a[11] && a[11] != Py_None))
        return py_set(cache, args, nargsf, kwnames);

    if (policy_capi != NULL && PyUnicode_CheckExact(name)) {
        /* the policy's random reads of a new key, started now (see _tinylfu_c's _prefetch): they
         * overlap with the clock read, the weighing and the `_data` lookup below, where they were
         * misses to memory one after another in the policy's add (a growing cache). A hint only:
         * an overwrite wastes three loads; nothing else changes. (str: hash() runs no Python
         * code, and the dict lookups below would compute and cache it anyway.) */
        Py_hash_t hh = PyObject_Hash(name);
        PyObject *add = PyDict_GetItemWithError(dict, s_policy_add); /* borrowed */
        if (add == NULL) {
            PyErr_Clear(); /* (the insert reads it again, under the lock, and reports) */
        } else if (hh != -1 && PyCFunction_Check(add) && PyCFunction_GET_SELF(add) != NULL &&
                   policy_capi->is_policy(PyCFunction_GET_SELF(add))) {
            policy_capi->prefetch(PyCFunction_GET_SELF(add), hh);
        }
    }
    PyObject *expire = NULL, *now = NULL;
    double now_d = 0.0; /* the clock read when `now` is NULL and `expire` set (see due_before) */
    if (ex == NULL || ex == Py_None) {
        /* one shared 0.0, as the Python method's constant: no float made (and kept) a key */
        expire = float_0;
        Py_INCREF(expire);
    } else if (PyLong_CheckExact(ex)) {
        int ovf = 0;
        long long x = PyLong_AsLongLongAndOverflow(ex, &ovf);
        if (x == -1 && PyErr_Occurred()) return NULL;
        if (ovf || x <= 0 || x > 9223372036854775LL) return py_set(cache, args, nargsf, kwnames);
        /* float-only arithmetic, no floor (see Cache.set) */
        int direct = clock_direct(&now_d);
        if (direct < 0) return NULL;
        if (direct) { /* (clock_ms' double, without its float) */
            expire = PyFloat_FromDouble(now_d + (double)x * 1000.0);
            if (expire == NULL) return NULL;
        } else if ((now = clock_ms()) == NULL) {
            return NULL;
        } else if (PyFloat_CheckExact(now)) {
            expire = PyFloat_FromDouble(PyFloat_AS_DOUBLE(now) + (double)x * 1000.0);
        } else {
            PyObject *exms = PyFloat_FromDouble((double)x * 1000.0);
            expire = exms ? PyNumber_Add(now, exms) : NULL;
            Py_XDECREF(exms);
        }
        if (expire == NULL) {
            Py_DECREF(now);
            return NULL;
        }
    } else {
        return py_set(cache, args, nargsf, kwnames);
    }

    PyObject *result = NULL;
    PyObject *data = NULL, *e = NULL, *dflt = NULL, *new = NULL, *lock = NULL, *w = NULL;
    Py_INCREF(value);
    {
        PyObject *decode = iattr(dict, s_decode);
        if (decode == NULL && PyErr_Occurred()) goto done;
        int norm = decode != NULL && decode != Py_None;
        Py_XDECREF(decode);
        if (norm) {
            PyObject *nv = PyObject_CallMethodOneArg(cache, s_norm, value);
            if (nv == NULL) goto done;
            Py_SETREF(value, nv);
        }
    }
    /* the scalar rules of _size.estimate, inlined; -1 sends odd scalars to the general path */
    long long vw;
    {
        PyTypeObject *cls = Py_TYPE(value);
        if (cls == &PyUnicode_Type) {
            vw = PyUnicode_IS_ASCII(value) ? 49 + (long long)PyUnicode_GET_LENGTH(value) : -1;
        } else if (cls == &PyLong_Type) {
            int ovf = 0;
            long long x = PyLong_AsLongLongAndOverflow(value, &ovf);
            if (x == -1 && PyErr_Occurred()) goto done;
            vw = (!ovf && -BIG < x && x < BIG) ? SCALAR_SIZE : -1;
        } else if (cls == &PyFloat_Type) {
            vw = SCALAR_SIZE;
        } else if (cls == &PyBytes_Type) {
            vw = 33 + (long long)PyBytes_GET_SIZE(value);
        } else if (cls == &PyBool_Type || cls == &PyComplex_Type || cls == &PyByteArray_Type) {
            vw = -1;
        } else {
            PyObject *est = core_global(s_estimate);
            if (est == NULL) goto done;
            PyObject *w = PyObject_CallOneArg(est, value);
            Py_DECREF(est);
            if (w == NULL) goto done;
            if (!PyLong_Check(w)) {
                PyErr_Format(PyExc_TypeError, "_fastpath_c: estimate() returned %R", w);
                Py_DECREF(w);
                goto done;
            }
            vw = PyLong_AsLongLong(w);
            Py_DECREF(w);
            if (vw == -1 && PyErr_Occurred()) goto done;
        }
    }
    data = iattr(dict, s_data);
    if (data == NULL || !PyDict_CheckExact(data)) {
        if (PyErr_Occurred()) goto done;
        /* an unexpected _data: the Python method, with the evaluated arguments */
        goto set_plain;
    }
    e = PyDict_GetItemWithError(data, name);
    if (e == NULL && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) goto done;
        PyErr_Clear(); /* unhashable: _set_plain raises CacheKeyError naming it */
    }
    Py_XINCREF(e);
    if (e != NULL) {
        /* the lock-free overwrite that keeps the value's weight (see Cache.set): no call runs
         * between the checks and the stores; the value is stored last */
        if (!Py_IS_TYPE(e, EntryType)) {
            /* an entry of the Python class (perflayer.cache imported with PERFLAYER_PURE_PYTHON
             * set, these paths bound later): the Python method decides, as for every odd case
             * (the work done so far, weighing and _norm, has no effect it would not repeat) */
            result = py_set(cache, args, nargsf, kwnames);
            goto done;
        }
        if (SLOT(e, off_e_plain_vw) == NULL || SLOT(e, off_e_expire) == NULL ||
            SLOT(e, off_e_value) == NULL)
            goto set_plain;
        PyObject *pvw = SLOT(e, off_e_plain_vw);
        int ovf = 0;
        long long p = PyLong_CheckExact(pvw) ? PyLong_AsLongLongAndOverflow(pvw, &ovf) : -3;
        if (p == -1 && PyErr_Occurred()) goto done;
        if (!PyLong_CheckExact(pvw) || ovf || p != vw) goto set_plain;
        PyObject *rmw = iattr(dict, s_rmw);
        if (rmw == NULL) {
            if (PyErr_Occurred()) goto done;
            goto set_plain;
        }
        int busy = plain_flag(rmw);
        Py_DECREF(rmw);
        if (busy != 0) goto set_plain;
        PyObject *eexp = SLOT(e, off_e_expire);
        if (!PyFloat_CheckExact(eexp) || !PyFloat_CheckExact(expire)) goto set_plain;
        double x = PyFloat_AS_DOUBLE(expire), y = PyFloat_AS_DOUBLE(eexp);
        if (!(x == 0.0 || (y != 0.0 && x >= y))) goto set_plain;
        Py_INCREF(expire);
        slot_set(e, off_e_expire, expire); /* (an exact float: atomic) */
        entry_track_for(e, value, 0);      /* (before the store: see "the entry") */
        Py_INCREF(value);
        slot_set(e, off_e_value, value); /* (may run the old value's __del__) */
        if (policy_hit(dict, name) < 0) goto done;
        /* (no active-expiry step here: an overwrite frees nothing; locked writes run it) */
        result = Py_True;
        Py_INCREF(result);
        goto done;
    }
    if (vw < 0 || !PyUnicode_CheckExact(name) || !PyUnicode_IS_ASCII(name)) goto set_plain;
    /* A new str key with a scalar value: the miss-then-fill path, inlined. The entry is built
     * before the lock (it is published only by the dict store under it). */
    long long weight = ENTRY_OVERHEAD + 49 + vw + (long long)PyUnicode_GET_LENGTH(name);
    {
        PyObject *mb = iattr(dict, s_max_bytes);
        if (mb == NULL) {
            if (PyErr_Occurred()) goto done;
            goto set_plain;
        }
        int over;
        if (mb == Py_None) {
            over = 0;
        } else {
            PyObject *w = PyLong_FromLongLong(weight);
            over = w ? PyObject_RichCompareBool(w, mb, Py_GT) : -1;
            Py_XDECREF(w);
        }
        Py_DECREF(mb);
        if (over < 0) goto done;
        if (over) goto set_plain; /* raises CacheValueTooLarge */
    }
    dflt = iattr(dict, s_default);
    lock = iattr(dict, s_lock);
    if (dflt == NULL || lock == NULL) {
        if (PyErr_Occurred()) goto done;
        goto set_plain;
    }
    {
        /* untracked by the cyclic GC unless the value (or the level) may lead to a cycle */
        PyObject *v = PyLong_FromLongLong(vw);
        w = weight_int(weight); /* (the entry's, and the policy's argument) */
        if (w != NULL && v != NULL) {
            PyObject *argv[7] = {name, value, expire, dflt, w, Py_None, v};
            new = entry_make(argv);
        }
        Py_XDECREF(v);
        if (new == NULL) goto done;
    }
    if (cache_lock_acquire(lock) < 0) goto done;
    {
        int rc = insert_locked(cache, dict, data, name, value, expire, now, now_d, dflt, new, w,
                               weight, vw);
        /* finally: lock.release() (an exception from it replaces the pending one, as in Python) */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        if (cache_lock_release(lock) < 0) {
            if (et != NULL) {
                PyObject *t2, *v2, *tb2;
                PyErr_Fetch(&t2, &v2, &tb2);
                PyErr_NormalizeException(&et, &ev, &tb);
                PyErr_NormalizeException(&t2, &v2, &tb2);
                if (v2 != NULL && ev != NULL) PyException_SetContext(v2, ev);
                else Py_XDECREF(ev);
                Py_XDECREF(et);
                Py_XDECREF(tb);
                PyErr_Restore(t2, v2, tb2);
            }
            goto done;
        }
        PyErr_Restore(et, ev, tb);
        if (rc < 0) goto done;
    }
    result = Py_True;
    Py_INCREF(result);
    goto done;

set_plain: {
    PyObject *v = PyLong_FromLongLong(vw);
    if (v != NULL) {
        PyObject *argv[4] = {name, value, expire, v};
        PyObject *buf[5] = {cache, argv[0], argv[1], argv[2], argv[3]};
        result = PyObject_VectorcallMethod(s_set_plain, buf, 5, NULL);
        Py_DECREF(v);
    }
}
done:
    Py_XDECREF(lock);
    Py_XDECREF(w);
    Py_XDECREF(new);
    Py_XDECREF(dflt);
    Py_XDECREF(e);
    Py_XDECREF(data);
    Py_XDECREF(value);
    Py_XDECREF(expire);
    Py_XDECREF(now);
    return result;
}

static PyObject *fast_set_call(PyObject *h, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames) {
    PyObject *cache, *dict;
    if (holder_parts(h, &cache, &dict) < 0) return NULL;
    PyObject *r = do_set(cache, dict, args, nargsf, kwnames);
    Py_DECREF(cache);
    Py_DECREF(dict);
    return r;
}

static PyMethodDef fast_set_def = {
    "set", (PyCFunction)(void (*)(void))fast_set_call, METH_FASTCALL | METH_KEYWORDS,
    "Set ``name`` to ``value``; True, or None when NX/XX blocked it (SET; C fast path)."};

/* ------------------------------------------------------------------ module */

static PyObject *make_holder(PyObject *cache) {
    if (ensure_init() < 0) return NULL;
    PyObject *dict = PyObject_GenericGetDict(cache, NULL);
    if (dict == NULL) return NULL;
    if (!PyDict_Check(dict)) {
        Py_DECREF(dict);
        PyErr_Format(PyExc_TypeError, "_fastpath_c: %R has no instance __dict__", cache);
        return NULL;
    }
    Holder *h = PyObject_GC_New(Holder, &HolderType);
    if (h == NULL) {
        Py_DECREF(dict);
        return NULL;
    }
    Py_INCREF(cache);
    h->cache = cache;
    h->dict = dict;
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

static PyObject *mod_fast_get(PyObject *mod, PyObject *cache) {
    (void)mod;
    PyObject *h = make_holder(cache);
    if (h == NULL) return NULL;
    PyObject *f = PyCFunction_New(&fast_get_def, h);
    Py_DECREF(h);
    return f;
}

static PyObject *mod_fast_set(PyObject *mod, PyObject *cache) {
    (void)mod;
    PyObject *h = make_holder(cache);
    if (h == NULL) return NULL;
    PyObject *f = PyCFunction_New(&fast_set_def, h);
    Py_DECREF(h);
    return f;
}

static PyMethodDef module_methods[] = {
    {"fast_get", (PyCFunction)mod_fast_get, METH_O,
     "Return a C ``get(name)`` bound to ``cache``, with Cache.get's semantics."},
    {"fast_set", (PyCFunction)mod_fast_set, METH_O,
     "Return a C ``set(name, value, ...)`` bound to ``cache``, with Cache.set's semantics."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT,
    "perflayer.cache._fastpath_c",
    "Cache.get and the plain Cache.set in C (see the comment at the top of _fastpath_c.c).",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__fastpath_c(void) {
    if (PyType_Ready(&HolderType) < 0 || PyType_Ready(&EntryTypeObj) < 0 ||
        PyType_Ready(&LockType) < 0)
        return NULL;
    if (float_1000 == NULL && (float_1000 = PyFloat_FromDouble(1000.0)) == NULL) return NULL;
    if (float_0 == NULL && (float_0 = PyFloat_FromDouble(0.0)) == NULL) return NULL;
    if (entry_alloc_check() < 0) return NULL;
    if (intern(&s_data, "_data") || intern(&s_default, "_default") ||
        intern(&s_policy_hit, "_policy_hit") || intern(&s_policy_miss, "_policy_miss") ||
        intern(&s_policy_add, "_policy_add") || intern(&s_decode, "_decode") ||
        intern(&s_rmw, "_rmw") || intern(&s_lock, "_lock") || intern(&s_fresh, "_fresh") ||
        intern(&s_due, "_due") || intern(&s_max_bytes, "max_bytes") ||
        intern(&s_get_miss, "_get_miss") || intern(&s_get_expired, "_get_expired") ||
        intern(&s_set_plain, "_set_plain") || intern(&s_store, "_store") ||
        intern(&s_untag, "_untag") || intern(&s_fold_fresh, "_fold_fresh") ||
        intern(&s_active_expire, "_active_expire") || intern(&s_norm, "_norm") ||
        intern(&s_acquire, "acquire") || intern(&s_release, "release") ||
        intern(&s_time, "_time") || intern(&s_estimate, "estimate") ||
        intern(&s_now_ms, "_now_ms") || intern(&s_get, "get") || intern(&s_set, "set") ||
        intern(&s_lvl, "lvl") || intern(&s_tags, "tags") || intern(&s_weight, "weight") ||
        intern(&s_hits, "hits") || intern(&s_misses, "misses") ||
        intern(&s_entries, "entries") || intern(&s_bytes, "bytes") ||
        intern(&s_evicted_size, "evicted_size") || intern(&s_append, "append") ||
        intern(&s_expiry_heap, "_expiry_heap") || intern(&s_run_keys, "_run_keys") ||
        intern(&s_run_when, "_run_when") || intern(&s_run_tail, "_run_tail") ||
        intern(&s_heappush, "_heappush") || intern(&s_rebuild_heap, "_rebuild_heap") ||
        intern(&s_expire, "expire"))
        return NULL;
    for (int i = 0; i < NPARAMS; i++) {
        if (intern(&param_str[i], param_names[i])) return NULL;
    }
    PyObject *m = PyModule_Create(&fastpath_module);
    if (m == NULL) return NULL;
    Py_INCREF(&HolderType);
    if (PyModule_AddObject(m, "Holder", (PyObject *)&HolderType) < 0) {
        Py_DECREF(&HolderType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&EntryTypeObj);
    if (PyModule_AddObject(m, "Entry", (PyObject *)&EntryTypeObj) < 0) {
        Py_DECREF(&EntryTypeObj);
        Py_DECREF(m);
        return NULL;
    }
    /* whether entries skip the GC's allocation count (see entry_alloc; for the tests) */
    if (PyModule_AddIntConstant(m, "_ENTRY_UNCOUNTED", gc_presize != 0) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&LockType);
    if (PyModule_AddObject(m, "Lock", (PyObject *)&LockType) < 0) {
        Py_DECREF(&LockType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
