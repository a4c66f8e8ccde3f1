/* Compact JSON for captured content, in C (used by genai_audit.content.to_json).
 *
 * The content of a model call (its message parts) becomes span attributes as JSON on every call.
 * The standard library's C encoder spends most of that time escaping strings, character by
 * character through a generic read, and then joining the pieces it made; this module writes the
 * whole document into one UTF-8 buffer, copying runs of characters that need no escaping with memcpy
 * (found 16 bytes at a time where the compiler targets SSE2, else 8). Output that is all ASCII is copied
 * into the string as it is; other output is read back as UTF-8.
 *
 * The output is exactly ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``. Only values
 * made of the exact built-in types are handled here: dict with str keys, list, tuple, str, int, float,
 * bool and None. For anything else (subclasses, other objects, non-str keys, lone surrogates, nesting
 * deeper than MAX_DEPTH) ``dumps`` returns None and the caller uses the standard library, so those
 * keep its behaviour, ``default=`` included.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 200
#define STACK_BYTES 4096

/* what a step returned besides success (0) */
#define FAILED (-1)     /* a Python exception is set */
#define UNSUPPORTED 1   /* not handled here: the caller falls back */

typedef struct {
    char *buf;
    Py_ssize_t len;
    Py_ssize_t cap;
    int above_ascii; /* whether any byte written so far is above ASCII */
    char stack[STACK_BYTES];
} Out;

/* makes room for more bytes than fit: the buffer at least doubles */
static int
grow(Out *out, Py_ssize_t more)
{
    if (more > PY_SSIZE_T_MAX / 2 - out->len) {
        PyErr_NoMemory();
        return FAILED;
    }
    Py_ssize_t cap = out->cap * 2;
    while (cap - out->len < more) {
        cap *= 2;
    }
    char *grown;
    if (out->buf == out->stack) {
        grown = PyMem_Malloc((size_t)cap);
        if (grown != NULL) {
            memcpy(grown, out->buf, (size_t)out->len);
        }
    }
    else {
        grown = PyMem_Realloc(out->buf, (size_t)cap);
    }
    if (grown == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    out->buf = grown;
    out->cap = cap;
    return 0;
}

/* room for more bytes: the common case inline, growing out of line */
static inline int
reserve(Out *out, Py_ssize_t more)
{
    return more <= out->cap - out->len ? 0 : grow(out, more);
}

static inline int
put(Out *out, const char *bytes, Py_ssize_t n)
{
    if (reserve(out, n) < 0) {
        return FAILED;
    }
    memcpy(out->buf + out->len, bytes, (size_t)n);
    out->len += n;
    return 0;
}

/* For each ASCII character: 0 when it is written as it is, else the letter after the backslash of its
 * escape ('u' for \u00XX). As the standard library's encoder does: '"', '\\', the five short escapes, and
 * \u00XX (lower-case hex) for the other control characters; DEL and everything above ASCII unescaped. */
static const char ESCAPE[128] = {
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
    [0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u', [0x06] = 'u',
    [0x07] = 'u', [0x0B] = 'u', [0x0E] = 'u', [0x0F] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u',
    [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u', [0x19] = 'u',
    [0x1A] = 'u', [0x1B] = 'u', [0x1C] = 'u', [0x1D] = 'u', [0x1E] = 'u', [0x1F] = 'u',
    ['"'] = '"', ['\\'] = '\\',
};

static const char HEX[] = "0123456789abcdef";

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* whether any of the 8 bytes in x is not copied as it is: above ASCII (two bytes in UTF-8), below 0x20, '"'
 * or '\\' (the usual word-at-a-time tests: a byte below n sets its high bit in (x - n*ONES) & ~x, and a
 * zero byte of x ^ c*ONES is a byte equal to c) */
static inline int
special8(uint64_t x)
{
    uint64_t quote = x ^ (ONES * '"');
    uint64_t backslash = x ^ (ONES * '\\');
    return ((x | ((x - ONES * 0x20) & ~x) | ((quote - ONES) & ~quote) | ((backslash - ONES) & ~backslash)) & HIGHS) != 0;
}

#if defined(__SSE2__)
/* the index of the first of the 16 bytes at s that is not copied as it is (as special8 tells them), else 16;
 * compared as signed bytes, those below 0x20 and those above ASCII are both below 0x20 */
static inline int
special16(const Py_UCS1 *s)
{
    __m128i x = _mm_loadu_si128((const __m128i *)s);
    __m128i hits = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
    int mask = _mm_movemask_epi8(hits);
    return mask ? __builtin_ctz((unsigned int)mask) : 16;
}
#endif

/* writes the escape of ASCII character c at p; returns the new end */
static inline char *
escape_ascii(char *p, unsigned int c)
{
    char letter = ESCAPE[c];
    *p++ = '\\';
    *p++ = letter;
    if (letter == 'u') {
        *p++ = '0';
        *p++ = '0';
        *p++ = HEX[c >> 4];
        *p++ = HEX[c & 0xF];
    }
    return p;
}

/* writes code point c (not ASCII, not a surrogate) as UTF-8 at p; returns the new end */
static inline char *
utf8(char *p, Py_UCS4 c)
{
    if (c < 0x800) {
        *p++ = (char)(0xC0 | (c >> 6));
    }
    else {
        if (c < 0x10000) {
            *p++ = (char)(0xE0 | (c >> 12));
        }
        else {
            *p++ = (char)(0xF0 | (c >> 18));
            *p++ = (char)(0x80 | ((c >> 12) & 0x3F));
        }
        *p++ = (char)(0x80 | ((c >> 6) & 0x3F));
    }
    *p++ = (char)(0x80 | (c & 0x3F));
    return p;
}

static int
write_str(Out *out, PyObject *text)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    /* at most 6 bytes a character (\u00XX), and the quotes */
    if (n > (PY_SSIZE_T_MAX - 2) / 6) {
        PyErr_NoMemory();
        return FAILED;
    }
    if (reserve(out, 6 * n + 2) < 0) {
        return FAILED;
    }
    char *p = out->buf + out->len;
    *p++ = '"';
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *s = data;
        Py_ssize_t i = 0;
        while (i < n) {
            Py_ssize_t run = i;
            uint64_t word;
#if defined(__SSE2__)
            while (run + 16 <= n) {
                int at = special16(s + run);
                run += at;
                if (at < 16) {
                    break; /* run is at the character: the loops below stop on it */
                }
            }
#endif
            while (run + 8 <= n) {
                memcpy(&word, s + run, 8);
                if (special8(word)) {
                    break;
                }
                run += 8;
            }
            while (run < n && s[run] < 0x80 && !ESCAPE[s[run]]) {
                run++;
            }
            memcpy(p, s + i, (size_t)(run - i));
            p += run - i;
            if (run == n) {
                break;
            }
            Py_UCS1 c = s[run];
            if (c < 0x80) {
                p = escape_ascii(p, c);
            }
            else {
                out->above_ascii = 1;
                p = utf8(p, c);
            }
            i = run + 1;
        }
    }
    else {
        out->above_ascii = 1; /* a string of this kind holds a character above Latin-1 */
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 c = kind == PyUnicode_2BYTE_KIND ? ((const Py_UCS2 *)data)[i] : ((const Py_UCS4 *)data)[i];
            if (c < 0x80) {
                if (ESCAPE[c]) {
                    p = escape_ascii(p, c);
                }
                else {
                    *p++ = (char)c;
                }
            }
            else if (c >= 0xD800 && c <= 0xDFFF) {
                return UNSUPPORTED; /* a lone surrogate has no UTF-8 form; the fallback keeps it */
            }
            else {
                p = utf8(p, c);
            }
        }
    }
    *p++ = '"';
    out->len = p - out->buf;
    return 0;
}

static int
write_int(Out *out, PyObject *number)
{
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return FAILED;
    }
    if (overflow) {
        PyObject *text = PyLong_Type.tp_repr(number);
        if (text == NULL) {
            return FAILED;
        }
        Py_ssize_t size;
        const char *digits = PyUnicode_AsUTF8AndSize(text, &size);
        int result = digits == NULL ? FAILED : put(out, digits, size);
        Py_DECREF(text);
        return result;
    }
    char digits[24];
    char *end = digits + sizeof(digits);
    char *p = end;
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        *--p = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0) {
        *--p = '-';
    }
    return put(out, p, end - p);
}

static int
write_float(Out *out, double value)
{
    if (isnan(value)) {
        return put(out, "NaN", 3);
    }
    if (isinf(value)) {
        return value > 0 ? put(out, "Infinity", 8) : put(out, "-Infinity", 9);
    }
    /* float.__repr__, which the standard library's encoder uses for finite floats */
    char *text = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) {
        return FAILED;
    }
    int result = put(out, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return result;
}

static int write_value(Out *out, PyObject *value, int depth);

static int
write_items(Out *out, PyObject *sequence, int depth)
{
    /* no Python code runs while encoding, so the sequence cannot change under the loop */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    if (put(out, "[", 1) < 0) {
        return FAILED;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && put(out, ",", 1) < 0) {
            return FAILED;
        }
        int result = write_value(out, items[i], depth);
        if (result != 0) {
            return result;
        }
    }
    return put(out, "]", 1);
}

static int
write_dict(Out *out, PyObject *dict, int depth)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    int first = 1;
    if (put(out, "{", 1) < 0) {
        return FAILED;
    }
    while (PyDict_Next(dict, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            return UNSUPPORTED; /* the standard library converts or refuses other keys */
        }
        if (!first && put(out, ",", 1) < 0) {
            return FAILED;
        }
        first = 0;
        int result = write_str(out, key);
        if (result != 0) {
            return result;
        }
        if (put(out, ":", 1) < 0) {
            return FAILED;
        }
        result = write_value(out, value, depth);
        if (result != 0) {
            return result;
        }
    }
    return put(out, "}", 1);
}

static int
write_value(Out *out, PyObject *value, int depth)
{
    if (PyUnicode_CheckExact(value)) {
        return write_str(out, value);
    }
    if (value == Py_None) {
        return put(out, "null", 4);
    }
    if (value == Py_True) {
        return put(out, "true", 4);
    }
    if (value == Py_False) {
        return put(out, "false", 5);
    }
    if (PyLong_CheckExact(value)) {
        return write_int(out, value);
    }
    if (PyFloat_CheckExact(value)) {
        return write_float(out, PyFloat_AS_DOUBLE(value));
    }
    if (depth >= MAX_DEPTH) {
        return UNSUPPORTED;
    }
    if (PyDict_CheckExact(value)) {
        return write_dict(out, value, depth + 1);
    }
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        return write_items(out, value, depth + 1);
    }
    return UNSUPPORTED;
}

PyDoc_STRVAR(dumps_doc,
             "dumps(value, /)\n--\n\n"
             "``json.dumps(value, ensure_ascii=False, separators=(',', ':'))`` for a value made of dict (str "
             "keys), list, tuple, str, int, float, bool and None, exactly those types; None for any other "
             "value, which the caller then encodes with the standard library.");

static PyObject *
dumps(PyObject *Py_UNUSED(module), PyObject *value)
{
    Out out;
    out.buf = out.stack;
    out.len = 0;
    out.cap = STACK_BYTES;
    out.above_ascii = 0;
    int result = write_value(&out, value, 0);
    PyObject *text = NULL;
    if (result == 0 && !out.above_ascii) {
        /* all ASCII: copied into the string as it is, without decoding it again */
        text = PyUnicode_New(out.len, 127);
        if (text != NULL) {
            memcpy(PyUnicode_1BYTE_DATA(text), out.buf, (size_t)out.len);
        }
    }
    else if (result == 0) {
        text = PyUnicode_DecodeUTF8(out.buf, out.len, NULL);
    }
    else if (result == UNSUPPORTED) {
        text = Py_NewRef(Py_None);
    }
    if (out.buf != out.stack) {
        PyMem_Free(out.buf);
    }
    return text;
}

static PyMethodDef methods[] = {
    {"dumps", dumps, METH_O, dumps_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "genai_audit._jsonenc",
    .m_doc = "Compact JSON for captured content, in C (see genai_audit.content.to_json).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__jsonenc(void)
{
    return PyModuleDef_Init(&module_def);
}
