/* The candidate loop of Detector.collect (genai_audit.processors.detectors), in C.
 *
 * Dense text has a candidate every hundred characters or so; the Python loop spends about as much time
 * per candidate on unpacking match tuples, the overlap test, slicing and offset conversion as the
 * matching and validation themselves take. This module does that bookkeeping in C and nothing else:
 * matching stays with google-re2's Match method and validators, refiners and context tests are the
 * detector's own Python callables, called with the same arguments at the same points as the Python loop
 * calls them. Every exception they raise propagates unchanged.
 *
 * Offsets: RE2 reports byte offsets into the UTF-8 text; findings carry character offsets. The text is
 * valid UTF-8 (it was encoded from a str), so the characters between two byte offsets are its bytes that
 * are not continuation bytes (10xxxxxx).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define IS_CONTINUATION(byte) (((byte) & 0xC0) == 0x80)

/* characters in data[from:to] (from <= to, both on character boundaries) */
static Py_ssize_t
count_chars(const unsigned char *data, Py_ssize_t from, Py_ssize_t to)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = from; i < to; i++) {
        count += !IS_CONTINUATION(data[i]);
    }
    return count;
}

/* the byte offset ``chars`` characters after byte offset ``pos`` (not beyond ``limit``) */
static Py_ssize_t
skip_chars(const unsigned char *data, Py_ssize_t pos, Py_ssize_t chars, Py_ssize_t limit)
{
    while (chars-- > 0 && pos < limit) {
        pos++;
        while (pos < limit && IS_CONTINUATION(data[pos])) {
            pos++;
        }
    }
    return pos;
}

/* One detector's pass over one document: everything that does not change from candidate to candidate. */
typedef struct {
    PyObject *text;      /* str */
    PyObject *taken;     /* bytearray: 1 where a byte is claimed */
    PyObject *reject;    /* callable or None */
    PyObject *refine;    /* callable or None */
    PyObject *validator; /* callable or None */
    PyObject *entity;
    PyObject *kind;
    PyObject *priority;
    PyTypeObject *finding; /* Finding: a tuple subclass */
    PyObject *found;       /* list of Finding */
    const unsigned char *data;
    int ascii_only;
} Pass;

/* taken.find(1, start, end) >= 0, on the buffer: the bytearray clamps the range the same way */
static int
is_taken(Pass *pass, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t size = PyByteArray_GET_SIZE(pass->taken);
    if (end > size) {
        end = size;
    }
    if (start >= end) {
        return 0;
    }
    return memchr(PyByteArray_AS_STRING(pass->taken) + start, 1, (size_t)(end - start)) != NULL;
}

/* taken[start:end] = b"\x01" * (end - start), for 0 <= start <= end */
static int
claim(Pass *pass, Py_ssize_t start, Py_ssize_t end)
{
    if (end <= PyByteArray_GET_SIZE(pass->taken)) {
        memset(PyByteArray_AS_STRING(pass->taken) + start, 1, (size_t)(end - start));
        return 0;
    }
    /* not reached while the bytearray keeps its length: the slice assignment as Python does it */
    PyObject *ones = PyBytes_FromStringAndSize(NULL, end - start);
    if (ones == NULL) {
        return -1;
    }
    memset(PyBytes_AS_STRING(ones), 1, (size_t)(end - start));
    int result = PySequence_SetSlice(pass->taken, start, end, ones);
    Py_DECREF(ones);
    return result;
}

/* found.append(tuple.__new__(Finding, (start, end, entity, kind, normalized, priority))); steals start and end */
static int
append_finding(Pass *pass, PyObject *start, PyObject *end, PyObject *normalized)
{
    if (start == NULL || end == NULL) {
        Py_XDECREF(start);
        Py_XDECREF(end);
        return -1;
    }
    /* what tuple.__new__ does for a subclass: allocate the subclass's instance and fill it */
    PyObject *finding = pass->finding->tp_alloc(pass->finding, 6);
    if (finding == NULL) {
        Py_DECREF(start);
        Py_DECREF(end);
        return -1;
    }
    PyTuple_SET_ITEM(finding, 0, start);
    PyTuple_SET_ITEM(finding, 1, end);
    PyTuple_SET_ITEM(finding, 2, Py_NewRef(pass->entity));
    PyTuple_SET_ITEM(finding, 3, Py_NewRef(pass->kind));
    PyTuple_SET_ITEM(finding, 4, Py_NewRef(normalized));
    PyTuple_SET_ITEM(finding, 5, Py_NewRef(pass->priority));
#if PY_VERSION_HEX >= 0x030E0000
    /* and what it does since 3.14, whose tuples cache their hash: mark it not computed (-1); tp_alloc
     * leaves it zeroed, which tuple's hash would return as the hash of every finding */
    ((PyTupleObject *)finding)->ob_hash = -1;
#endif
    int result;
    if (PyList_CheckExact(pass->found)) {
        result = PyList_Append(pass->found, finding);
    }
    else {
        PyObject *none = PyObject_CallMethod(pass->found, "append", "O", finding);
        result = none == NULL ? -1 : 0;
        Py_XDECREF(none);
    }
    Py_DECREF(finding);
    return result;
}

/* ``offset, length, normalized = refined``, with the errors unpacking raises; new references */
static int
unpack3(PyObject *refined, PyObject **items)
{
    if (PyTuple_CheckExact(refined) && PyTuple_GET_SIZE(refined) == 3) {
        for (int i = 0; i < 3; i++) {
            items[i] = Py_NewRef(PyTuple_GET_ITEM(refined, i));
        }
        return 0;
    }
    PyObject *iterator = PyObject_GetIter(refined);
    if (iterator == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) && Py_TYPE(refined)->tp_iter == NULL &&
            !PySequence_Check(refined)) {
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object", Py_TYPE(refined)->tp_name);
        }
        return -1;
    }
    int got = 0;
    for (; got < 3; got++) {
        items[got] = PyIter_Next(iterator);
        if (items[got] == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 3, got %d)", got);
            }
            goto error;
        }
    }
    PyObject *extra = PyIter_Next(iterator);
    if (extra != NULL) {
        Py_DECREF(extra);
#if PY_VERSION_HEX >= 0x030E0000
        /* since 3.14 the message gives the length of a list, tuple or dict */
        if (PyList_CheckExact(refined) || PyTuple_CheckExact(refined) || PyDict_CheckExact(refined)) {
            Py_ssize_t size = PyDict_CheckExact(refined) ? PyDict_Size(refined) : Py_SIZE(refined);
            if (size > 3) {
                PyErr_Format(PyExc_ValueError, "too many values to unpack (expected 3, got %zd)", size);
                goto error;
            }
        }
#endif
        PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 3)");
        goto error;
    }
    if (PyErr_Occurred()) {
        goto error;
    }
    Py_DECREF(iterator);
    return 0;
error:
    while (got-- > 0) {
        Py_CLEAR(items[got]);
    }
    Py_DECREF(iterator);
    return -1;
}

/* len(value[a:b].encode()) with Python's slice semantics for any a, b */
static PyObject *
encoded_length(PyObject *value, PyObject *a, PyObject *b)
{
    PyObject *slice = PySlice_New(a, b, NULL);
    if (slice == NULL) {
        return NULL;
    }
    PyObject *part = PyObject_GetItem(value, slice);
    Py_DECREF(slice);
    if (part == NULL) {
        return NULL;
    }
    PyObject *encoded = PyUnicode_AsUTF8String(part);
    Py_DECREF(part);
    if (encoded == NULL) {
        return NULL;
    }
    Py_ssize_t length = PyBytes_GET_SIZE(encoded);
    Py_DECREF(encoded);
    return PyLong_FromSsize_t(length);
}

/* obj == number with Python's ==: 1, 0, or -1 with an exception set */
static int
equals(PyObject *obj, Py_ssize_t number)
{
    PyObject *other = PyLong_FromSsize_t(number);
    if (other == NULL) {
        return -1;
    }
    int result = PyObject_RichCompareBool(obj, other, Py_EQ);
    Py_DECREF(other);
    return result;
}

/* The refined span as the Python loop computes it, for refiners whose offsets are not plain
 * 0 <= offset <= length <= len(value) integers: Python arithmetic, slicing and bytearray methods,
 * whatever they make of such offsets. */
static int
refined_generic(Pass *pass, Py_ssize_t start_byte, Py_ssize_t end_byte, Py_ssize_t first_char, PyObject *value,
                PyObject *offset, PyObject *length, PyObject *normalized)
{
    PyObject *start = NULL, *end = NULL, *first = NULL, *tmp = NULL, *ones = NULL, *slice = NULL;
    int result = -1;
    start = PyLong_FromSsize_t(start_byte);
    if (start == NULL) {
        goto done;
    }
    if (pass->ascii_only) {
        tmp = PyNumber_Add(start, offset);
        if (tmp == NULL) {
            goto done;
        }
        end = PyNumber_Add(start, length);
        if (end == NULL) {
            goto done;
        }
        Py_SETREF(start, tmp);
        tmp = NULL;
    }
    else {
        /* offset == 0 and length == len(value), evaluated as Python does */
        int whole = equals(offset, 0);
        if (whole > 0) {
            whole = equals(length, PyUnicode_GET_LENGTH(value));
        }
        if (whole < 0) {
            goto done;
        }
        if (whole) {
            end = PyLong_FromSsize_t(end_byte);
        }
        else {
            tmp = encoded_length(value, Py_None, offset);
            if (tmp == NULL) {
                goto done;
            }
            Py_SETREF(start, PyNumber_Add(start, tmp));
            Py_CLEAR(tmp);
            if (start == NULL) {
                goto done;
            }
            tmp = encoded_length(value, offset, length);
            if (tmp == NULL) {
                goto done;
            }
            end = PyNumber_Add(start, tmp);
            Py_CLEAR(tmp);
        }
        if (end == NULL) {
            goto done;
        }
    }
    /* if is_taken(1, start, end) < 0: */
    tmp = PyObject_CallMethod(pass->taken, "find", "iOO", 1, start, end);
    if (tmp == NULL) {
        goto done;
    }
    Py_ssize_t index = PyLong_AsSsize_t(tmp);
    Py_CLEAR(tmp);
    if (index == -1 && PyErr_Occurred()) {
        goto done;
    }
    if (index >= 0) {
        result = 0;
        goto done;
    }
    /* taken[start:end] = b"\x01" * (end - start) */
    tmp = PyNumber_Subtract(end, start);
    if (tmp == NULL) {
        goto done;
    }
    ones = PyBytes_FromStringAndSize("\x01", 1);
    if (ones == NULL) {
        goto done;
    }
    Py_SETREF(ones, PyNumber_Multiply(ones, tmp));
    Py_CLEAR(tmp);
    if (ones == NULL) {
        goto done;
    }
    slice = PySlice_New(start, end, NULL);
    if (slice == NULL || PyObject_SetItem(pass->taken, slice, ones) < 0) {
        goto done;
    }
    /* found.append(Finding(first + offset, first + length, ...)): the second sum only once the first is made,
     * as Python evaluates them (either may call the offsets' own Python code, or fail) */
    first = PyLong_FromSsize_t(first_char);
    if (first == NULL) {
        goto done;
    }
    tmp = PyNumber_Add(first, offset);
    if (tmp == NULL) {
        goto done;
    }
    {
        PyObject *stop = PyNumber_Add(first, length);
        if (stop == NULL) {
            goto done;
        }
        result = append_finding(pass, tmp, stop, normalized);
        tmp = NULL; /* append_finding took it */
    }
done:
    Py_XDECREF(start);
    Py_XDECREF(end);
    Py_XDECREF(first);
    Py_XDECREF(tmp);
    Py_XDECREF(ones);
    Py_XDECREF(slice);
    return result;
}

/* A refiner's answer for the candidate data[start:end] == value, which starts at character ``first`` */
static int
refined(Pass *pass, Py_ssize_t start, Py_ssize_t end, Py_ssize_t first, Py_ssize_t chars, PyObject *value,
        PyObject *answer)
{
    PyObject *items[3];
    if (unpack3(answer, items) < 0) {
        return -1;
    }
    PyObject *offset_obj = items[0], *length_obj = items[1], *normalized = items[2];
    int result;
    Py_ssize_t offset = -1, length = -1;
    if (PyLong_CheckExact(offset_obj) && PyLong_CheckExact(length_obj)) {
        offset = PyLong_AsSsize_t(offset_obj);
        length = offset == -1 && PyErr_Occurred() ? -1 : PyLong_AsSsize_t(length_obj);
        if (PyErr_Occurred()) { /* beyond Py_ssize_t: Python arithmetic decides */
            PyErr_Clear();
            offset = length = -1;
        }
    }
    if (offset < 0 || offset > length || length > chars) {
        result = refined_generic(pass, start, end, first, value, offset_obj, length_obj, normalized);
    }
    else {
        if (pass->ascii_only) {
            end = start + length;
            start += offset;
        }
        else if (offset != 0 || length != chars) {
            start = skip_chars(pass->data, start, offset, end);
            end = skip_chars(pass->data, start, length - offset, end);
        }
        if (is_taken(pass, start, end)) {
            result = 0;
        }
        else if (claim(pass, start, end) < 0) {
            result = -1;
        }
        else {
            PyObject *from = PyLong_FromSsize_t(first + offset);
            PyObject *to = from == NULL ? NULL : PyLong_FromSsize_t(first + length);
            result = append_finding(pass, from, to, normalized);
        }
    }
    Py_DECREF(offset_obj);
    Py_DECREF(length_obj);
    Py_DECREF(normalized);
    return result;
}

/* (start, end) from one of Match's spans */
static int
read_span(PyObject *span, Py_ssize_t *start, Py_ssize_t *end)
{
    if (!PyTuple_Check(span) || PyTuple_GET_SIZE(span) != 2) {
        PyErr_SetString(PyExc_TypeError, "a match span must be a (start, end) tuple");
        return -1;
    }
    *start = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 0));
    if (*start == -1 && PyErr_Occurred()) {
        return -1;
    }
    *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 1));
    if (*end == -1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

/* One candidate that no claimed byte overlaps: the context test, then the refiner or the validator. */
static int
candidate(Pass *pass, Py_ssize_t start, Py_ssize_t end, Py_ssize_t first, Py_ssize_t stop)
{
    PyObject *value = PyUnicode_Substring(pass->text, first, stop);
    if (value == NULL) {
        return -1;
    }
    PyObject *first_obj = NULL, *stop_obj = NULL;
    int result = -1;
    if (pass->reject != Py_None) {
        first_obj = PyLong_FromSsize_t(first);
        stop_obj = first_obj == NULL ? NULL : PyLong_FromSsize_t(stop);
        if (stop_obj == NULL) {
            goto done;
        }
        PyObject *args[4] = {NULL, pass->text, first_obj, stop_obj};
        PyObject *verdict =
            PyObject_Vectorcall(pass->reject, args + 1, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (verdict == NULL) {
            goto done;
        }
        int rejected = PyObject_IsTrue(verdict);
        Py_DECREF(verdict);
        if (rejected != 0) {
            result = rejected < 0 ? -1 : 0;
            goto done;
        }
    }
    if (pass->refine != Py_None) {
        PyObject *answer = PyObject_CallOneArg(pass->refine, value);
        if (answer == NULL) {
            goto done;
        }
        result = answer == Py_None ? 0 : refined(pass, start, end, first, stop - first, value, answer);
        Py_DECREF(answer);
        goto done;
    }
    PyObject *checked;
    if (pass->validator != Py_None) {
        checked = PyObject_CallOneArg(pass->validator, value);
        if (checked == NULL) {
            goto done;
        }
    }
    else {
        checked = Py_NewRef(value);
    }
    if (checked == Py_None || claim(pass, start, end) < 0) {
        result = checked == Py_None ? 0 : -1;
    }
    else {
        if (first_obj == NULL) {
            first_obj = PyLong_FromSsize_t(first);
            stop_obj = first_obj == NULL ? NULL : PyLong_FromSsize_t(stop);
        }
        result = append_finding(pass, first_obj, stop_obj, checked);
        first_obj = stop_obj = NULL; /* append_finding took them */
    }
    Py_DECREF(checked);
done:
    Py_XDECREF(first_obj);
    Py_XDECREF(stop_obj);
    Py_DECREF(value);
    return result;
}

PyDoc_STRVAR(collect_doc,
             "collect(match, anchor, view, data, text, taken, ascii_only, group, reject, refine, validator,\n"
             "        entity, kind, priority, finding, found)\n"
             "--\n\n"
             "The candidate loop of Detector.collect: findings appended to found and claimed in taken.");

static PyObject *
collect(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 16) {
        PyErr_Format(PyExc_TypeError, "collect() takes 16 positional arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *match = args[0], *anchor = args[1], *view = args[2], *data = args[3];
    Pass pass = {
        .text = args[4],
        .taken = args[5],
        .reject = args[8],
        .refine = args[9],
        .validator = args[10],
        .entity = args[11],
        .kind = args[12],
        .priority = args[13],
        .found = args[15],
    };
    if (!PyBytes_Check(data) || !PyUnicode_Check(pass.text) || !PyByteArray_Check(pass.taken)) {
        PyErr_SetString(PyExc_TypeError, "collect() needs data: bytes, text: str and taken: bytearray");
        return NULL;
    }
    if (!PyType_Check(args[14]) || !PyType_IsSubtype((PyTypeObject *)args[14], &PyTuple_Type) ||
        (PyTypeObject *)args[14] == &PyTuple_Type) {
        PyErr_SetString(PyExc_TypeError, "collect() needs finding: a subclass of tuple");
        return NULL;
    }
    pass.finding = (PyTypeObject *)args[14];
    pass.ascii_only = PyObject_IsTrue(args[6]);
    if (pass.ascii_only < 0) {
        return NULL;
    }
    Py_ssize_t group = PyLong_AsSsize_t(args[7]);
    if (group == -1 && PyErr_Occurred()) {
        return NULL;
    }
    pass.data = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    PyObject *size_obj = PyLong_FromSsize_t(size);
    if (size_obj == NULL) {
        return NULL;
    }
    /* where character offsets were last known, for text that is not all ASCII: candidates come in order
     * and do not overlap, so each converts by counting only the bytes since the last one */
    Py_ssize_t known_byte = 0, known_char = 0;
    Py_ssize_t pos = 0;
    while (pos <= size) {
        PyObject *pos_obj = PyLong_FromSsize_t(pos);
        if (pos_obj == NULL) {
            goto error;
        }
        PyObject *call[5] = {NULL, anchor, view, pos_obj, size_obj};
        PyObject *spans = PyObject_Vectorcall(match, call + 1, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(pos_obj);
        if (spans == NULL) {
            goto error;
        }
        if (!PyList_Check(spans) || PyList_GET_SIZE(spans) < 1) {
            Py_DECREF(spans);
            PyErr_SetString(PyExc_TypeError, "match must return a non-empty list of spans");
            goto error;
        }
        Py_ssize_t match_start, match_end, start, end;
        if (read_span(PyList_GET_ITEM(spans, 0), &match_start, &match_end) < 0) {
            Py_DECREF(spans);
            goto error;
        }
        if (match_start < 0) {
            Py_DECREF(spans);
            break;
        }
        start = match_start;
        end = match_end;
        if (group > 0) {
            if (group >= PyList_GET_SIZE(spans)) {
                Py_DECREF(spans);
                PyErr_SetString(PyExc_IndexError, "list index out of range");
                goto error;
            }
            if (read_span(PyList_GET_ITEM(spans, group), &start, &end) < 0) {
                Py_DECREF(spans);
                goto error;
            }
        }
        else if (group < 0) { /* the first group that took part, else the whole match */
            for (Py_ssize_t i = 1; i < PyList_GET_SIZE(spans); i++) {
                Py_ssize_t group_start, group_end;
                if (read_span(PyList_GET_ITEM(spans, i), &group_start, &group_end) < 0) {
                    Py_DECREF(spans);
                    goto error;
                }
                if (group_start >= 0) {
                    start = group_start;
                    end = group_end;
                    break;
                }
            }
        }
        Py_DECREF(spans);
        /* RE2 reports spans inside the text; any other span would index outside the buffers below */
        if (match_end < match_start || match_end > size || (start >= 0 && (end < start || end > size))) {
            PyErr_SetString(PyExc_ValueError, "a match span lies outside the text");
            goto error;
        }
        /* where the next search starts, as finditer does it */
        if (match_end > pos) {
            pos = match_end;
        }
        else if (pos < size) { /* an empty match: step over one character */
            pos = skip_chars(pass.data, pos, 1, size);
        }
        else { /* an empty match at the end of the text: this candidate is the last */
            pos = size + 1;
        }
        /* start, end: byte offsets; first, stop: character offsets. Only candidates that no claimed byte
         * overlaps are converted, and tested before the context (both only reject; this one is cheaper). */
        if (start < 0 || start == end || is_taken(&pass, start, end)) {
            continue;
        }
        Py_ssize_t first, stop;
        if (pass.ascii_only) {
            first = start;
            stop = end;
        }
        else {
            if (start >= known_byte) {
                first = known_char + count_chars(pass.data, known_byte, start);
            }
            else { /* not reached: a group lies within its match, and matches follow one another */
                first = count_chars(pass.data, 0, start);
            }
            stop = first + count_chars(pass.data, start, end);
            known_byte = end;
            known_char = stop;
        }
        if (candidate(&pass, start, end, first, stop) < 0) {
            goto error;
        }
    }
    Py_DECREF(size_obj);
    Py_RETURN_NONE;
error:
    Py_DECREF(size_obj);
    return NULL;
}

static PyMethodDef methods[] = {
    {"collect", (PyCFunction)(void (*)(void))collect, METH_FASTCALL, collect_doc},
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
    .m_name = "genai_audit.processors._collect",
    .m_doc = "The candidate loop of Detector.collect, in C (see genai_audit.processors.detectors).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__collect(void)
{
    return PyModuleDef_Init(&module_def);
}
