/* The chat request of the usual shape, read in C (used by genai_audit.instrumentation.openai._extract).
 *
 * Reading a ``chat.completions.create`` request is many small steps in Python, on every call. This module
 * reads the requests that hold only the plain built-in types, which is what an application writing a
 * call by hand sends: every argument None or of the exact types str, int, float, bool, list, dict or
 * tuple; no response_format, tools or functions; every message a dict of exactly a str "role" (not a tool
 * or function result) and a str "content". For those it gives exactly what the Python reading gives; for
 * any other request it returns None and the Python reading does it all, so every other shape keeps its
 * behaviour. It runs no Python code and changes nothing it is given unless it succeeds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* attribute names and message keys, interned once at module init */
typedef struct {
    PyObject *output_type, *text, *choice_count, *seed, *stream, *max_tokens, *stop_sequences, *service_tier;
    PyObject *floats[4];
    PyObject *role, *content, *parts, *type;
} Names;

/* the arguments read, by keyword */
typedef struct {
    PyObject *messages, *response_format, *tools, *functions, *n, *seed, *stream, *max_completion_tokens,
        *max_tokens, *stop, *service_tier;
    PyObject *floats[4];
} Args;

static Args A;

static Names N;

static const char *FLOAT_ARGS[4] = {"temperature", "top_p", "frequency_penalty", "presence_penalty"};
static const char *FLOAT_ATTRIBUTES[4] = {
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
    "gen_ai.request.frequency_penalty",
    "gen_ai.request.presence_penalty",
};

/* whether value is None or of one of the exact plain types (an SDK sentinel or model is not) */
static int
plain(PyObject *value)
{
    return value == Py_None || PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || PyFloat_CheckExact(value)
           || PyBool_Check(value) || PyList_CheckExact(value) || PyDict_CheckExact(value) || PyTuple_CheckExact(value);
}

/* the argument named by the interned name, or NULL when absent or None (borrowed) */
static PyObject *
arg(PyObject *kwargs, PyObject *name)
{
    /* a lookup of an exact str key in a dict of str keys runs no Python code and cannot fail */
    PyObject *value = PyDict_GetItemWithError(kwargs, name);
    return value == Py_None ? NULL : value;
}

/* whether key (an exact str) is the interned name, or equal to it */
static int
is(PyObject *key, PyObject *name)
{
    return key == name || PyUnicode_Compare(key, name) == 0;
}

/* a plain message: exactly {"role": str, "content": str}, the role not a tool's or a function's */
static int
plain_message(PyObject *message)
{
    if (!PyDict_CheckExact(message) || PyDict_GET_SIZE(message) != 2) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value, *role = NULL, *content = NULL;
    while (PyDict_Next(message, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            return 0; /* looking up a key beside one of another type could run its __eq__ */
        }
        if (is(key, N.role)) {
            role = value;
        }
        else if (is(key, N.content)) {
            content = value;
        }
    }
    if (role == NULL || content == NULL || !PyUnicode_CheckExact(role) || !PyUnicode_CheckExact(content)) {
        return 0;
    }
    return PyUnicode_CompareWithASCIIString(role, "tool") != 0 && PyUnicode_CompareWithASCIIString(role, "function") != 0;
}

/* -1 error, 0 not the usual shape, 1 it is */
static int
usual(PyObject *kwargs)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !plain(value)) {
            return 0; /* with only str keys, the look-ups below run no Python code and cannot fail */
        }
    }
    if (arg(kwargs, A.response_format) != NULL || arg(kwargs, A.tools) != NULL || arg(kwargs, A.functions) != NULL) {
        return 0;
    }
    PyObject *stop = arg(kwargs, A.stop);
    if (stop != NULL && (PyList_CheckExact(stop) || PyTuple_CheckExact(stop))) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(stop);
        PyObject **items = PySequence_Fast_ITEMS(stop);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!PyUnicode_CheckExact(items[i])) {
                return 0; /* a str subclass, or anything else: as the Python reading decides */
            }
        }
    }
    for (int i = 0; i < 4; i++) {
        PyObject *number = arg(kwargs, A.floats[i]);
        if (number != NULL && PyLong_CheckExact(number)) {
            double x = PyLong_AsDouble(number);
            if (x == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return 0; /* too large for a float: the Python reading raises as it does */
            }
        }
    }
    PyObject *messages = arg(kwargs, A.messages);
    if (messages != NULL) {
        int truth = PyObject_IsTrue(messages); /* of a plain type: no Python code runs */
        if (truth < 0) {
            return -1;
        }
        if (truth) {
            if (!PyList_CheckExact(messages) && !PyTuple_CheckExact(messages)) {
                return 0;
            }
            Py_ssize_t n = PySequence_Fast_GET_SIZE(messages);
            PyObject **items = PySequence_Fast_ITEMS(messages);
            for (Py_ssize_t i = 0; i < n; i++) {
                if (!plain_message(items[i])) {
                    return 0;
                }
            }
        }
    }
    return 1;
}

static int
set(PyObject *attributes, PyObject *key, PyObject *value)
{
    return PyDict_SetItem(attributes, key, value);
}

/* an exact int (bool is not) */
static int
exact_int(PyObject *value)
{
    return value != NULL && PyLong_CheckExact(value);
}

static int
fill(PyObject *kwargs, PyObject *attributes)
{
    if (set(attributes, N.output_type, N.text) < 0) {
        return -1;
    }
    PyObject *n = arg(kwargs, A.n);
    if (exact_int(n)) {
        int overflow = 0;
        long value = PyLong_AsLongAndOverflow(n, &overflow);
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
        if ((overflow || value != 1) && set(attributes, N.choice_count, n) < 0) {
            return -1;
        }
    }
    PyObject *seed = arg(kwargs, A.seed);
    if (exact_int(seed) && set(attributes, N.seed, seed) < 0) {
        return -1;
    }
    PyObject *stream = arg(kwargs, A.stream);
    int streaming = stream == NULL ? 0 : PyObject_IsTrue(stream);
    if (streaming < 0 || set(attributes, N.stream, streaming ? Py_True : Py_False) < 0) {
        return -1;
    }
    PyObject *max_tokens = arg(kwargs, A.max_completion_tokens);
    if (max_tokens == NULL) {
        max_tokens = arg(kwargs, A.max_tokens);
    }
    if (exact_int(max_tokens) && set(attributes, N.max_tokens, max_tokens) < 0) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        PyObject *number = arg(kwargs, A.floats[i]);
        if (number == NULL) {
            continue;
        }
        if (PyFloat_CheckExact(number)) {
            if (set(attributes, N.floats[i], number) < 0) {
                return -1;
            }
        }
        else if (PyLong_CheckExact(number)) {
            PyObject *converted = PyFloat_FromDouble(PyLong_AsDouble(number)); /* fits: checked by usual() */
            if (converted == NULL) {
                return -1;
            }
            int result = set(attributes, N.floats[i], converted);
            Py_DECREF(converted);
            if (result < 0) {
                return -1;
            }
        }
    }
    PyObject *stop = arg(kwargs, A.stop);
    if (stop != NULL) {
        PyObject *sequences = NULL;
        if (PyUnicode_CheckExact(stop)) {
            sequences = PyList_New(1);
            if (sequences != NULL) {
                PyList_SET_ITEM(sequences, 0, Py_NewRef(stop));
            }
        }
        else if (PyList_CheckExact(stop) || PyTuple_CheckExact(stop)) {
            sequences = PySequence_List(stop);
        }
        if (sequences == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (sequences != NULL) {
            int result = set(attributes, N.stop_sequences, sequences);
            Py_DECREF(sequences);
            if (result < 0) {
                return -1;
            }
        }
    }
    PyObject *tier = arg(kwargs, A.service_tier);
    if (tier != NULL && PyUnicode_CheckExact(tier) && set(attributes, N.service_tier, tier) < 0) {
        return -1;
    }
    return 0;
}

/* {"role": role, "parts": [{"type": "text", "content": content}]} of a plain message */
static PyObject *
message_parts(PyObject *message)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value, *role = NULL, *text = NULL;
    while (PyDict_Next(message, &pos, &key, &value)) {
        if (is(key, N.role)) {
            role = value;
        }
        else {
            text = value;
        }
    }
    PyObject *part = PyDict_New();
    if (part == NULL || PyDict_SetItem(part, N.type, N.text) < 0 || PyDict_SetItem(part, N.content, text) < 0) {
        Py_XDECREF(part);
        return NULL;
    }
    PyObject *parts = PyList_New(1);
    if (parts == NULL) {
        Py_DECREF(part);
        return NULL;
    }
    PyList_SET_ITEM(parts, 0, part);
    PyObject *out = PyDict_New();
    if (out == NULL || PyDict_SetItem(out, N.role, role) < 0 || PyDict_SetItem(out, N.parts, parts) < 0) {
        Py_XDECREF(out);
        Py_DECREF(parts);
        return NULL;
    }
    Py_DECREF(parts);
    return out;
}

PyDoc_STRVAR(chat_request_doc,
             "chat_request(kwargs, attributes, /)\n--\n\n"
             "For a request of the usual shape (see the module), add its request attributes to ``attributes`` "
             "after what it holds and return its input messages as message parts; for any other request "
             "return None and change nothing.");

static PyObject *
chat_request(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyDict_CheckExact(args[0]) || !PyDict_CheckExact(args[1])) {
        Py_RETURN_NONE;
    }
    PyObject *kwargs = args[0], *attributes = args[1];
    int shape = usual(kwargs);
    if (shape <= 0) {
        return shape < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *messages = arg(kwargs, A.messages);
    Py_ssize_t n = 0;
    PyObject **items = NULL;
    if (messages != NULL && (PyList_CheckExact(messages) || PyTuple_CheckExact(messages))) {
        n = PySequence_Fast_GET_SIZE(messages);
        items = PySequence_Fast_ITEMS(messages);
    }
    PyObject *inputs = PyList_New(n);
    if (inputs == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *parts = message_parts(items[i]);
        if (parts == NULL) {
            Py_DECREF(inputs);
            return NULL;
        }
        PyList_SET_ITEM(inputs, i, parts);
    }
    if (fill(kwargs, attributes) < 0) {
        Py_DECREF(inputs);
        return NULL;
    }
    return inputs;
}

static PyMethodDef methods[] = {
    {"chat_request", (PyCFunction)(void (*)(void))chat_request, METH_FASTCALL, chat_request_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "genai_audit.instrumentation.openai._fastread",
    "Chat requests of the usual shape, read in C; see chat_request.",
    -1,
    methods,
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__fastread(void)
{
    if (intern(&N.output_type, "gen_ai.output.type") < 0 || intern(&N.text, "text") < 0
        || intern(&N.choice_count, "gen_ai.request.choice.count") < 0 || intern(&N.seed, "gen_ai.request.seed") < 0
        || intern(&N.stream, "gen_ai.request.stream") < 0 || intern(&N.max_tokens, "gen_ai.request.max_tokens") < 0
        || intern(&N.stop_sequences, "gen_ai.request.stop_sequences") < 0
        || intern(&N.service_tier, "openai.request.service_tier") < 0 || intern(&N.role, "role") < 0
        || intern(&N.content, "content") < 0 || intern(&N.parts, "parts") < 0 || intern(&N.type, "type") < 0) {
        return NULL;
    }
    if (intern(&A.messages, "messages") < 0 || intern(&A.response_format, "response_format") < 0
        || intern(&A.tools, "tools") < 0 || intern(&A.functions, "functions") < 0 || intern(&A.n, "n") < 0
        || intern(&A.seed, "seed") < 0 || intern(&A.stream, "stream") < 0
        || intern(&A.max_completion_tokens, "max_completion_tokens") < 0 || intern(&A.max_tokens, "max_tokens") < 0
        || intern(&A.stop, "stop") < 0 || intern(&A.service_tier, "service_tier") < 0) {
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        if (intern(&N.floats[i], FLOAT_ATTRIBUTES[i]) < 0 || intern(&A.floats[i], FLOAT_ARGS[i]) < 0) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
