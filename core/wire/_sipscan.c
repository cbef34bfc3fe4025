/* The header section of a SIP message in one pass (core/wire/sip.py, parse_message).
 *
 * scan(data, names) -> (start line, body offset, [(canonical name, value), ...]) or None
 *
 * Only the plain case is taken: a header section of printable ASCII (and tabs) whose every line
 * ends with CRLF, closed by an empty line, with no folded line, every header line
 * "Name: value" with a name already in ``names`` (header name as written -> canonical name, the
 * parser's cache of names it has checked), at most max_headers lines after the start line and
 * max_bytes bytes. Anything else — bare LF or CR, other control bytes, non-ASCII, folding, an
 * unknown or malformed name, a missing end — gives None, and the Python parser reads the message
 * (it gives the same values for the plain case, and the errors with their offsets otherwise).
 * Values are stripped of spaces and tabs, which is all str.strip() can find in such a line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* A str of n bytes already checked to be ASCII (below 0x7F): no decoding pass. */
static PyObject *ascii_str(const unsigned char *p, Py_ssize_t n) {
    PyObject *s = PyUnicode_New(n, 127);
    if (s)
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
    return s;
}

static PyObject *scan(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data;
    PyObject *names;
    Py_ssize_t max_headers, max_bytes;
    if (!PyArg_ParseTuple(args, "y*O!nn", &data, &PyDict_Type, &names, &max_headers, &max_bytes))
        return NULL;
    const unsigned char *b = data.buf;
    const Py_ssize_t size = data.len;
    PyObject *headers = NULL, *start = NULL, *result = NULL;
    Py_ssize_t pos = 0, line = 0;
    headers = PyList_New(0);
    if (!headers)
        goto done;
    for (;;) {
        /* one line: [pos, end) followed by CRLF */
        Py_ssize_t end = pos, colon = -1;
        while (end < size) {
            unsigned char c = b[end];
            if (c == '\r')
                break;
            if (c >= 0x7F || (c < 0x20 && c != '\t'))
                goto plain_not;
            if (c == ':' && colon < 0)
                colon = end;
            end++;
        }
        if (end + 1 >= size || b[end + 1] != '\n' || end > max_bytes)
            goto plain_not; /* no CRLF (a bare CR, or the end of the data before the empty line) */
        if (line == 0) {
            start = ascii_str(b + pos, end - pos);
            if (!start)
                goto done;
        } else if (end == pos) {
            /* the empty line: the header section ends before it, the body after its CRLF */
            PyObject *body = PyLong_FromSsize_t(end + 2);
            if (body)
                result = PyTuple_Pack(3, start, body, headers);
            Py_XDECREF(body);
            goto done;
        } else {
            if (line > max_headers || colon < 0 || b[pos] == ' ' || b[pos] == '\t')
                goto plain_not;
            PyObject *name = ascii_str(b + pos, colon - pos);
            if (!name)
                goto done;
            PyObject *key = PyDict_GetItemWithError(names, name); /* borrowed */
            Py_DECREF(name);
            if (!key) {
                if (PyErr_Occurred())
                    goto done;
                goto plain_not;
            }
            Py_ssize_t v0 = colon + 1, v1 = end;
            while (v0 < v1 && (b[v0] == ' ' || b[v0] == '\t'))
                v0++;
            while (v1 > v0 && (b[v1 - 1] == ' ' || b[v1 - 1] == '\t'))
                v1--;
            PyObject *value = ascii_str(b + v0, v1 - v0);
            if (!value)
                goto done;
            PyObject *pair = PyTuple_Pack(2, key, value);
            Py_DECREF(value);
            if (!pair || PyList_Append(headers, pair) < 0) {
                Py_XDECREF(pair);
                goto done;
            }
            Py_DECREF(pair);
        }
        line++;
        pos = end + 2;
    }
plain_not:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(start);
    Py_XDECREF(headers);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "The header section of a plain SIP message, or None (see _sipscan.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "core.wire._sipscan",
                                    "The header section of a SIP message in one pass (see _sipscan.c).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__sipscan(void) { return PyModule_Create(&module); }
