/* The chat request and response of the usual shape, read in C (used by
 * genai_audit.instrumentation.openai._extract).
 *
 * Reading a ``chat.completions.create`` request is many small steps in Python, on every call. This module
 * reads the requests that hold only the plain built-in types, which is what an application writing a
 * call by hand sends: every argument None or of the exact types str, int, float, bool, list, dict or
 * tuple; no response_format, tools or functions; every message a dict of exactly a str "role" (not a tool
 * or function result) and a str "content". For those it gives exactly what the Python reading gives; for
 * any other request it returns None and the Python reading does it all, so every other shape keeps its
 * behaviour. It runs no Python code and changes nothing it is given unless it succeeds.
 *
 * The same goes for the response (chat_response): a completion whose objects are all of classes the
 * Python reading has already found readable through their instance dict (the caches it is given), with
 * text answers only (no tool calls, function call or refusal), exact int token counts and str finish
 * reasons. Anything else is left to the Python reading.
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


/* ---- the response ---------------------------------------------------------------------------------- */

/* names read from a completion, interned once at module init */
typedef struct {
    PyObject *dict_, *extra, *usage, *choices, *prompt_tokens, *completion_tokens, *input_tokens, *output_tokens;
    PyObject *prompt_details, *completion_details, *input_details, *output_details, *cached_tokens;
    PyObject *reasoning_tokens, *finish_reason, *message, *tool_calls, *function_call, *refusal, *name, *user;
    PyObject *empty, *id_names[4], *id_keys[4];
    PyObject *input_key, *output_key, *cache_read_key, *reasoning_key, *finish_reasons_key;
} Response;

static Response R;

static const char *ID_NAMES[4] = {"id", "model", "system_fingerprint", "service_tier"};
static const char *ID_KEYS[4] = {
    "gen_ai.response.id",
    "gen_ai.response.model",
    "openai.response.system_fingerprint",
    "openai.response.service_tier",
};

/* caches given by the Python reading: class -> whether it reads instances through their __dict__ */
enum { COMPLETIONS, USAGES, PROMPT_DETAILS, COMPLETION_DETAILS, CHOICES, MESSAGES, CACHES };

/* obj.__dict__ (new reference) when obj's class is marked readable in cache; NULL and no error to decline */
static PyObject *
instance_dict(PyObject *obj, PyObject *cache)
{
    PyObject *ok = PyDict_GetItemWithError(cache, (PyObject *)Py_TYPE(obj)); /* keyed by classes: no Python code */
    if (ok != Py_True) {
        return NULL;
    }
    PyObject *values = PyObject_GetAttr(obj, R.dict_); /* as the Python reading's obj.__dict__ */
    if (values == NULL || !PyDict_CheckExact(values)) {
        Py_XDECREF(values);
        PyErr_Clear();
        return NULL;
    }
    return values;
}

/* the value of a field in an instance dict (borrowed, NULL when absent); the keys of a model's instance dict
 * are its field names, exact str, so the look-up runs no Python code */
static PyObject *
field(PyObject *values, PyObject *name)
{
    return PyDict_GetItemWithError(values, name);
}

/* whether the Python reading's get(obj, name) is None for a name that is not one of obj's fields: a
 * pydantic 2 model, the name neither in its instance dict nor a class attribute, nor among its extra
 * fields. 1 yes, 0 decline. */
static int
absent(PyObject *obj, PyObject *values, PyObject *name)
{
    if (field(values, name) != NULL || _PyType_Lookup(Py_TYPE(obj), name) != NULL) {
        return 0;
    }
    PyObject *extra = PyObject_GetAttr(obj, R.extra);
    if (extra == NULL) {
        PyErr_Clear(); /* not a pydantic 2 model: the Python reading decides */
        return 0;
    }
    int none = extra == Py_None || (PyDict_CheckExact(extra) && PyDict_GetItemWithError(extra, name) == NULL);
    Py_DECREF(extra);
    PyErr_Clear();
    return none;
}

/* whether an object of this class is true without running its code: no __bool__ or __len__ */
static int
plainly_true(PyObject *obj)
{
    PyTypeObject *t = Py_TYPE(obj);
    return (t->tp_as_number == NULL || t->tp_as_number->nb_bool == NULL)
           && (t->tp_as_mapping == NULL || t->tp_as_mapping->mp_length == NULL)
           && (t->tp_as_sequence == NULL || t->tp_as_sequence->sq_length == NULL);
}

/* a token count into updates: an exact int is stored, None skipped; 0 for anything else (decline) */
static int
count(PyObject *updates, PyObject *key, PyObject *value)
{
    if (value == NULL || value == Py_None) {
        return 1;
    }
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    return PyDict_SetItem(updates, key, value) < 0 ? -1 : 1;
}

/* the details object of a usage (prompt or completion) and its one count; 1 done, 0 decline, -1 error */
static int
details(PyObject *usage, PyObject *values, PyObject *name, PyObject *other_name, PyObject *cache, PyObject *count_name,
        PyObject *updates, PyObject *key)
{
    PyObject *found = field(values, name);
    if (found == NULL || found == Py_None) {
        /* the Python reading falls back to the Responses API's name */
        return absent(usage, values, other_name);
    }
    if (!plainly_true(found)) {
        return 0;
    }
    PyObject *inner = instance_dict(found, cache);
    if (inner == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int done = count(updates, key, field(inner, count_name));
    Py_DECREF(inner);
    return done;
}

/* the usage's counts into updates; 1 done, 0 decline, -1 error */
static int
usage_counts(PyObject *usage, PyObject **caches, PyObject *updates)
{
    if (usage == NULL || usage == Py_None) {
        return 1;
    }
    PyObject *values = instance_dict(usage, caches[USAGES]);
    if (values == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int done = 1;
    PyObject *input = field(values, R.prompt_tokens), *output = field(values, R.completion_tokens);
    if ((input == NULL || input == Py_None) && !absent(usage, values, R.input_tokens)) {
        done = 0;
    }
    if (done == 1 && (output == NULL || output == Py_None) && !absent(usage, values, R.output_tokens)) {
        done = 0;
    }
    if (done == 1) {
        done = count(updates, R.input_key, input);
    }
    if (done == 1) {
        done = count(updates, R.output_key, output);
    }
    if (done == 1) {
        done = details(usage, values, R.prompt_details, R.input_details, caches[PROMPT_DETAILS], R.cached_tokens,
                       updates, R.cache_read_key);
    }
    if (done == 1) {
        done = details(usage, values, R.completion_details, R.output_details, caches[COMPLETION_DETAILS],
                       R.reasoning_tokens, updates, R.reasoning_key);
    }
    Py_DECREF(values);
    return done;
}

/* the message parts of one choice's text answer, with its finish reason; NULL and no error to decline */
static PyObject *
answer(PyObject *message, PyObject *reason, PyObject **caches)
{
    PyObject *values = instance_dict(message, caches[MESSAGES]);
    if (values == NULL) {
        return NULL;
    }
    PyObject *out = NULL;
    PyObject *role = field(values, N.role), *text = field(values, N.content);
    PyObject *tool_calls = field(values, R.tool_calls), *function_call = field(values, R.function_call);
    PyObject *refusal = field(values, R.refusal);
    if (role == NULL || role == Py_None) {
        role = R.user;
    }
    int usual = PyUnicode_CheckExact(role) && PyUnicode_CompareWithASCIIString(role, "tool") != 0
                && PyUnicode_CompareWithASCIIString(role, "function") != 0 && text != NULL
                && PyUnicode_CheckExact(text)
                && (tool_calls == NULL || tool_calls == Py_None
                    || (PyList_CheckExact(tool_calls) && PyList_GET_SIZE(tool_calls) == 0))
                && (function_call == NULL || function_call == Py_None)
                && (refusal == NULL || refusal == Py_None
                    || (PyUnicode_CheckExact(refusal) && PyUnicode_GET_LENGTH(refusal) == 0))
                && absent(message, values, R.name);
    if (usual) {
        PyObject *part = PyDict_New(), *parts = NULL;
        if (part != NULL && PyDict_SetItem(part, N.type, N.text) == 0 && PyDict_SetItem(part, N.content, text) == 0) {
            parts = PyList_New(1);
        }
        if (parts != NULL) {
            PyList_SET_ITEM(parts, 0, part);
            part = NULL;
            out = PyDict_New();
            if (out != NULL
                && (PyDict_SetItem(out, N.role, role) < 0 || PyDict_SetItem(out, N.parts, parts) < 0
                    || PyDict_SetItem(out, R.finish_reason, reason) < 0)) {
                Py_CLEAR(out);
            }
        }
        Py_XDECREF(part);
        Py_XDECREF(parts);
    }
    Py_DECREF(values);
    return out;
}

/* -1 error, 0 decline, 1 done: the choices' answers into outputs and their finish reasons into updates */
static int
choices(PyObject *found, PyObject **caches, PyObject *updates, PyObject *outputs)
{
    if (found == NULL || found == Py_None) {
        return 1;
    }
    if (!PyList_CheckExact(found)) {
        return 0;
    }
    Py_ssize_t n = PyList_GET_SIZE(found);
    if (n == 0) {
        return 1;
    }
    PyObject *reasons = PyList_New(0);
    if (reasons == NULL) {
        return -1;
    }
    int done = 1;
    for (Py_ssize_t i = 0; i < n && done == 1; i++) {
        PyObject *choice = PyList_GET_ITEM(found, i);
        PyObject *values = instance_dict(choice, caches[CHOICES]);
        if (values == NULL) {
            done = PyErr_Occurred() ? -1 : 0;
            break;
        }
        PyObject *reason = field(values, R.finish_reason), *message = field(values, R.message);
        if (reason == NULL) {
            reason = Py_None;
        }
        if (message == NULL || (reason != Py_None && !PyUnicode_CheckExact(reason))) {
            done = 0;
        }
        else if (PyList_Append(reasons, reason == Py_None ? R.empty : reason) < 0) {
            done = -1;
        }
        else {
            PyObject *out = answer(message, reason, caches);
            if (out == NULL) {
                done = PyErr_Occurred() ? -1 : 0;
            }
            else {
                done = PyList_Append(outputs, out) < 0 ? -1 : 1;
                Py_DECREF(out);
            }
        }
        Py_DECREF(values);
    }
    if (done == 1 && PyDict_SetItem(updates, R.finish_reasons_key, reasons) < 0) {
        done = -1;
    }
    Py_DECREF(reasons);
    return done;
}

PyDoc_STRVAR(chat_response_doc,
             "chat_response(response, caches, /)\n--\n\n"
             "For a completion of the usual shape (see the module), return (the attributes to add, in the order "
             "the Python reading adds them; the output messages as message parts); for any other return None. "
             "``caches`` holds the Python reading's dicts of readable classes: completions, usages, prompt "
             "details, completion details, choices, messages.");

static PyObject *
chat_response(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyTuple_CheckExact(args[1]) || PyTuple_GET_SIZE(args[1]) != CACHES) {
        Py_RETURN_NONE;
    }
    PyObject **caches = &PyTuple_GET_ITEM(args[1], 0);
    for (int i = 0; i < CACHES; i++) {
        if (!PyDict_CheckExact(caches[i])) {
            Py_RETURN_NONE;
        }
    }
    PyObject *values = instance_dict(args[0], caches[COMPLETIONS]);
    if (values == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    PyObject *updates = PyDict_New(), *outputs = PyList_New(0), *result = NULL;
    int done = updates != NULL && outputs != NULL ? 1 : -1;
    for (int i = 0; i < 4 && done == 1; i++) {
        PyObject *value = field(values, R.id_names[i]);
        if (value != NULL && PyUnicode_Check(value) && PyDict_SetItem(updates, R.id_keys[i], value) < 0) {
            done = -1;
        }
    }
    if (done == 1) {
        done = usage_counts(field(values, R.usage), caches, updates);
    }
    if (done == 1) {
        done = choices(field(values, R.choices), caches, updates, outputs);
    }
    if (done == 1) {
        result = PyTuple_Pack(2, updates, outputs);
    }
    else if (done == 0) {
        result = Py_NewRef(Py_None);
    }
    Py_DECREF(values);
    Py_XDECREF(updates);
    Py_XDECREF(outputs);
    return result;
}

static PyMethodDef methods[] = {
    {"chat_request", (PyCFunction)(void (*)(void))chat_request, METH_FASTCALL, chat_request_doc},
    {"chat_response", (PyCFunction)(void (*)(void))chat_response, METH_FASTCALL, chat_response_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "genai_audit.instrumentation.openai._fastread",
    "Chat requests and responses of the usual shape, read in C; see chat_request and chat_response.",
    -1,
    methods,
};

/* every interned name: where it goes, and its text */
static const struct {
    PyObject **slot;
    const char *text;
} NAMES[] = {
    {&N.output_type, "gen_ai.output.type"},
    {&N.text, "text"},
    {&N.choice_count, "gen_ai.request.choice.count"},
    {&N.seed, "gen_ai.request.seed"},
    {&N.stream, "gen_ai.request.stream"},
    {&N.max_tokens, "gen_ai.request.max_tokens"},
    {&N.stop_sequences, "gen_ai.request.stop_sequences"},
    {&N.service_tier, "openai.request.service_tier"},
    {&N.role, "role"},
    {&N.content, "content"},
    {&N.parts, "parts"},
    {&N.type, "type"},
    {&A.messages, "messages"},
    {&A.response_format, "response_format"},
    {&A.tools, "tools"},
    {&A.functions, "functions"},
    {&A.n, "n"},
    {&A.seed, "seed"},
    {&A.stream, "stream"},
    {&A.max_completion_tokens, "max_completion_tokens"},
    {&A.max_tokens, "max_tokens"},
    {&A.stop, "stop"},
    {&A.service_tier, "service_tier"},
    {&R.dict_, "__dict__"},
    {&R.extra, "__pydantic_extra__"},
    {&R.usage, "usage"},
    {&R.choices, "choices"},
    {&R.prompt_tokens, "prompt_tokens"},
    {&R.completion_tokens, "completion_tokens"},
    {&R.input_tokens, "input_tokens"},
    {&R.output_tokens, "output_tokens"},
    {&R.prompt_details, "prompt_tokens_details"},
    {&R.completion_details, "completion_tokens_details"},
    {&R.input_details, "input_tokens_details"},
    {&R.output_details, "output_tokens_details"},
    {&R.cached_tokens, "cached_tokens"},
    {&R.reasoning_tokens, "reasoning_tokens"},
    {&R.finish_reason, "finish_reason"},
    {&R.message, "message"},
    {&R.tool_calls, "tool_calls"},
    {&R.function_call, "function_call"},
    {&R.refusal, "refusal"},
    {&R.name, "name"},
    {&R.user, "user"},
    {&R.empty, ""},
    {&R.input_key, "gen_ai.usage.input_tokens"},
    {&R.output_key, "gen_ai.usage.output_tokens"},
    {&R.cache_read_key, "gen_ai.usage.cache_read.input_tokens"},
    {&R.reasoning_key, "gen_ai.usage.reasoning.output_tokens"},
    {&R.finish_reasons_key, "gen_ai.response.finish_reasons"},
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
    for (size_t i = 0; i < sizeof(NAMES) / sizeof(NAMES[0]); i++) {
        if (intern(NAMES[i].slot, NAMES[i].text) < 0) {
            return NULL;
        }
    }
    for (int i = 0; i < 4; i++) {
        if (intern(&N.floats[i], FLOAT_ATTRIBUTES[i]) < 0 || intern(&A.floats[i], FLOAT_ARGS[i]) < 0
            || intern(&R.id_names[i], ID_NAMES[i]) < 0 || intern(&R.id_keys[i], ID_KEYS[i]) < 0) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
