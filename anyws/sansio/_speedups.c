/*
 * Optional C accelerator for anyws.sansio.frames (spec (m)).
 *
 * One function, apply_mask(data, mask) -> bytes: XOR a WebSocket payload with
 * the repeated 4-byte masking key (RFC 6455, section 5.3). Its behaviour
 * matches the pure-Python _apply_mask_py in frames.py, which stays the
 * reference: same accepted types, same errors, in the same order.
 *
 * The payload is processed 8 bytes at a time through a uint64_t built from
 * the key twice. memcpy() moves bytes in and out of that integer, so there is
 * no unaligned access and no strict-aliasing violation; compilers turn those
 * memcpy() calls into plain loads and stores and vectorise the loop at -O3.
 * The byte order does not matter: XOR works byte by byte either way.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* Above this size the XOR takes long enough (tens of microseconds) for
 * releasing the GIL to be worth its cost, so other threads can run. */
#define RELEASE_GIL_THRESHOLD (64 * 1024)

static void
xor_mask(const unsigned char *restrict src, unsigned char *restrict dst,
         Py_ssize_t size, const unsigned char key[4])
{
    unsigned char key8[8];
    uint64_t key64;
    uint64_t chunk;
    Py_ssize_t i = 0;

    memcpy(key8, key, 4);
    memcpy(key8 + 4, key, 4);
    memcpy(&key64, key8, 8);

    for (; i + 8 <= size; i += 8) {
        memcpy(&chunk, src + i, 8);
        chunk ^= key64;
        memcpy(dst + i, &chunk, 8);
    }
    /* i is a multiple of 8 here, so the key lines up with i & 3. */
    for (; i < size; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

/* Parse (data, mask) from a vectorcall, positionally or by keyword, like the
 * Python signature apply_mask(data, mask). Return 0, or -1 with an error. */
static int
parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           PyObject **data, PyObject **mask)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    Py_ssize_t i;

    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "apply_mask() takes 2 positional arguments but %zd "
                     "were given", nargs);
        return -1;
    }
    *data = nargs > 0 ? args[0] : NULL;
    *mask = nargs > 1 ? args[1] : NULL;
    for (i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        PyObject **slot;

        if (PyUnicode_CompareWithASCIIString(name, "data") == 0) {
            slot = data;
        }
        else if (PyUnicode_CompareWithASCIIString(name, "mask") == 0) {
            slot = mask;
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() got an unexpected keyword argument "
                         "'%U'", name);
            return -1;
        }
        if (*slot != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() got multiple values for argument '%U'",
                         name);
            return -1;
        }
        *slot = args[nargs + i];
    }
    if (*data == NULL || *mask == NULL) {
        PyErr_Format(PyExc_TypeError,
                     "apply_mask() missing required argument '%s'",
                     *data == NULL ? "data" : "mask");
        return -1;
    }
    return 0;
}

/* Get a simple byte buffer over data. Like the Python version, accept only
 * bytes, bytearray and memoryview (and their subclasses), and copy a
 * memoryview that is not C-contiguous into bytes first. On success the
 * caller releases view and drops *copy (which may be NULL). */
static int
get_data_buffer(PyObject *data, Py_buffer *view, PyObject **copy)
{
    *copy = NULL;
    if (!PyBytes_Check(data) && !PyByteArray_Check(data)
        && !PyMemoryView_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "data must be bytes-like");
        return -1;
    }
    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) == 0) {
        return 0;
    }
    /* PyBUF_SIMPLE refuses a non-contiguous memoryview with BufferError;
     * other errors (a released memoryview) propagate as in Python. */
    if (!PyMemoryView_Check(data)
        || !PyErr_ExceptionMatches(PyExc_BufferError)) {
        return -1;
    }
    PyErr_Clear();
    *copy = PyBytes_FromObject(data);
    if (*copy == NULL) {
        return -1;
    }
    if (PyObject_GetBuffer(*copy, view, PyBUF_SIMPLE) < 0) {
        Py_CLEAR(*copy);
        return -1;
    }
    return 0;
}

/* Copy the masking key, already known to have 4 items, into key. Accept what
 * bytes(mask) accepts; refuse a buffer that is not 4 bytes long. */
static int
get_mask_key(PyObject *mask, unsigned char key[4])
{
    PyObject *raw = PyBytes_FromObject(mask);

    if (raw == NULL) {
        return -1;
    }
    if (PyBytes_GET_SIZE(raw) != 4) {
        Py_DECREF(raw);
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        return -1;
    }
    memcpy(key, PyBytes_AS_STRING(raw), 4);
    Py_DECREF(raw);
    return 0;
}

static PyObject *
mask_buffer(const Py_buffer *view, const unsigned char key[4])
{
    PyObject *result = PyBytes_FromStringAndSize(NULL, view->len);
    const unsigned char *src = (const unsigned char *)view->buf;
    unsigned char *dst;

    if (result == NULL) {
        return NULL;
    }
    dst = (unsigned char *)PyBytes_AS_STRING(result);
    if (view->len > RELEASE_GIL_THRESHOLD) {
        /* The source buffer stays exported while the GIL is released, so it
         * cannot be resized or freed; result is not shared yet. */
        Py_BEGIN_ALLOW_THREADS
        xor_mask(src, dst, view->len, key);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask(src, dst, view->len, key);
    }
    return result;
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask)\n"
"--\n"
"\n"
"XOR data with mask repeated (RFC 6455, 5.3) and return bytes.\n"
"\n"
"data is bytes, bytearray or memoryview; mask holds 4 bytes.\n"
"Raise ValueError if mask is not 4 bytes long and TypeError if data\n"
"is not bytes-like.");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    PyObject *data;
    PyObject *mask;
    PyObject *copy;
    PyObject *result = NULL;
    Py_ssize_t mask_len;
    Py_buffer view;
    unsigned char key[4];

    (void)module;
    if (parse_args(args, nargs, kwnames, &data, &mask) < 0) {
        return NULL;
    }
    /* Same checks in the same order as the Python version: the key length,
     * the payload type, then the key contents only for a non-empty payload. */
    mask_len = PyObject_Length(mask);
    if (mask_len < 0) {
        return NULL;
    }
    if (mask_len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        return NULL;
    }
    if (get_data_buffer(data, &view, &copy) < 0) {
        return NULL;
    }
    if (view.len == 0) {
        result = PyBytes_FromStringAndSize(NULL, 0);
    }
    else if (get_mask_key(mask, key) == 0) {
        result = mask_buffer(&view, key);
    }
    PyBuffer_Release(&view);
    Py_XDECREF(copy);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask,
     METH_FASTCALL | METH_KEYWORDS, apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    /* No module state and no global state: safe in subinterpreters. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* The function only touches its own buffers: no GIL needed. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "anyws.sansio._speedups",
    "Optional C accelerator for WebSocket masking (RFC 6455, 5.3).",
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
