/*
 * perflayer.cache: the C APIs the extensions export to each other through capsules, declared
 * once. Bump a struct's ``version`` on any change to it; an importer that finds another version
 * falls back to method calls.
 *
 * - ``PolicyCAPI``: _tinylfu_c's capsule "perflayer.cache._tinylfu_c._C_API", used by
 *   _fastpath_c (the new-key insert: prefetch, ``add`` without a method call) and _auto_c (the
 *   prefetch of the twin's and the engine's first slots).
 * - ``EnginesCAPI``: _engines_c's capsule "perflayer.cache._engines_c._C_API", used by _auto_c
 *   (the prefetch of the LIRS and ARC simulations' and engines' first slots).
 */
#ifndef PERFLAYER_CACHE_CAPI_H
#define PERFLAYER_CACHE_CAPI_H

#include <Python.h>

/* hash(key), an exact str's cached hash read in place (no call); shared by _tinylfu_c and
   _engines_c, whose tables both probe by it. */
static inline Py_hash_t key_hash(PyObject *key)
{
    if (PyUnicode_CheckExact(key)) {
        Py_hash_t hh = ((PyASCIIObject *)key)->hash;
        if (hh != -1) {
            return hh;
        }
    }
    return PyObject_Hash(key);
}

typedef struct {
    int version; /* 1 */
    int (*is_policy)(PyObject *p);
    void (*prefetch)(PyObject *p, Py_hash_t hh);
    PyObject *(*add)(PyObject *p, PyObject *key, PyObject *weight);
    PyCFunction add_method; /* the C function of the method ``add`` (to recognise it bound) */
} PolicyCAPI;

typedef struct {
    int version; /* 1 */
    void (*prefetch)(PyObject *p, Py_hash_t hh);
} EnginesCAPI;

#endif
