/* Ed25519 verification of many signatures with the interpreter lock released once.

Theory of operation
-------------------
Why this exists. libsodium (through PyNaCl) checks one signature per call, and each call
releases Python's interpreter lock for its ~60 us of arithmetic and takes it back after. With
a node's verify threads doing that thousands of times a second beside the thread that admits
transactions and builds blocks, the lock changed hands around every signature, and each
hand-off made the lock's holder wait for the waker: measured on one validator (bench/RESULTS.md,
2026-12-07, "one verification loop in C"), a node that skipped its signature checks committed
~1.7x the transfers, far more than the checks' own CPU explains. No library offers a batch call
that keeps the lock released for a whole batch (libsodium has none; PyNaCl and cryptography
verify one signature a call), so this module is that loop, and nothing more: the arithmetic
stays libsodium's.

What it does. ``bind(address)`` takes the address of libsodium's
``crypto_sign_verify_detached`` (in the library PyNaCl loaded: citychain.crypto.ed25519 finds
it), so this file neither links nor bundles a second libsodium. ``verify(pks, sigs, msgs,
ends)`` checks n signatures given as four buffers: n 32-byte public keys one after another,
n 64-byte signatures, the messages one after another, and n native unsigned 64-bit offsets
where each message ends in ``msgs``. It returns n bytes, 1 where the signature is valid and 0
where it is not. libsodium's ``crypto_sign_open``, which the one-at-a-time path calls, makes
the same check (it calls the same verification on the signed message's two halves), so the two
paths accept exactly the same signatures; tests/crypto/test_ed25519_batch.py holds them equal.

Safety. The buffer sizes are checked before the lock is released, and each end offset is
checked against the messages' length inside the loop as it is read (read once, so a buffer
changed by another thread meanwhile cannot send a read out of bounds); any inconsistency is a
ValueError, never a read past a buffer. Buffers are held (PEP 3118) for the whole call.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef int (*verify_detached_fn)(const unsigned char *sig, const unsigned char *m,
                                  unsigned long long mlen, const unsigned char *pk);

static verify_detached_fn verify_detached = NULL;

static PyObject *bind(PyObject *self, PyObject *arg) {
    unsigned long long address = PyLong_AsUnsignedLongLong(arg);
    if (address == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (address == 0) {
        PyErr_SetString(PyExc_ValueError, "a null address for crypto_sign_verify_detached");
        return NULL;
    }
    verify_detached = (verify_detached_fn)(uintptr_t)address;
    Py_RETURN_NONE;
}

static PyObject *verify(PyObject *self, PyObject *args) {
    Py_buffer pks, sigs, msgs, ends;
    if (verify_detached == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bind() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*y*y*y*:verify", &pks, &sigs, &msgs, &ends)) {
        return NULL;
    }
    PyObject *out = NULL;
    Py_ssize_t n = pks.len / 32;
    Py_ssize_t bad = -1;
    if (pks.len % 32 != 0 || sigs.len != 64 * n || ends.len != (Py_ssize_t)sizeof(uint64_t) * n) {
        PyErr_Format(PyExc_ValueError,
                     "inconsistent buffers: %zd bytes of keys, %zd of signatures, %zd of ends",
                     pks.len, sigs.len, ends.len);
    } else if ((out = PyBytes_FromStringAndSize(NULL, n)) != NULL) {
        unsigned char *result = (unsigned char *)PyBytes_AS_STRING(out);
        const unsigned char *pk = (const unsigned char *)pks.buf;
        const unsigned char *sig = (const unsigned char *)sigs.buf;
        const unsigned char *msg = (const unsigned char *)msgs.buf;
        const unsigned char *end_bytes = (const unsigned char *)ends.buf;
        const uint64_t total = (uint64_t)msgs.len;
        Py_BEGIN_ALLOW_THREADS
        uint64_t start = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t end;
            memcpy(&end, end_bytes + sizeof(uint64_t) * i, sizeof(uint64_t)); /* any alignment */
            if (end < start || end > total) {
                bad = i;
                break;
            }
            result[i] = verify_detached(sig + 64 * i, msg + start, end - start, pk + 32 * i) == 0;
            start = end;
        }
        Py_END_ALLOW_THREADS
        if (bad >= 0) {
            Py_CLEAR(out);
            PyErr_Format(PyExc_ValueError,
                         "message end %zd is out of order or past the messages", bad);
        }
    }
    PyBuffer_Release(&pks);
    PyBuffer_Release(&sigs);
    PyBuffer_Release(&msgs);
    PyBuffer_Release(&ends);
    return out;
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_O, "bind(address): the address of crypto_sign_verify_detached."},
    {"verify", verify, METH_VARARGS,
     "verify(pks, sigs, msgs, ends) -> bytes: 1 per valid signature, 0 per invalid one."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "citychain.crypto._ed25519_batch",
    .m_doc = "Ed25519 verification of many signatures with the interpreter lock released once.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__ed25519_batch(void) { return PyModule_Create(&module); }
