/* The event reader on the counting path, compiled: streams.codec.events._fast_decode_outcome, line for
 * line, without Python per field.
 *
 * read(data, start) reads one OutcomeEvent written with the current schema (the caller checked
 * the header) and returns it, or None at anything it does not expect: a varint longer than 64
 * bits, a length past the end, a union branch or enum index out of range, a boolean byte other
 * than 0 or 1, bytes that are not UTF-8, a date or instant outside Python's range, a schema
 * version or outcome number outside an Avro int, or trailing bytes. fastavro then reads the
 * record and gives the error, as it does for the Python reader. tests/unit/test_codec.py holds
 * both readers equal to fastavro on the writer's corpus, on generated events and on damaged
 * bytes.
 *
 * The event is a frozen dataclass with slots: it is allocated by its type and its slots are set
 * at their offsets, which configure() takes from the class's member descriptors (and checks:
 * one object slot per field, of that class). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <structmember.h>

#define NFIELDS 13
enum {
    F_EVENT_ID,
    F_FORCE_ID,
    F_CRIME_REF,
    F_DISPOSAL,
    F_OUTCOME_DATE,
    F_RECORDED_AT,
    F_SOURCE_SYSTEM,
    F_OFFENCE_CODE,
    F_CRIME_TYPE,
    F_OUTCOME_NUMBER,
    F_OUTCOME_TEXT,
    F_DOMESTIC_ABUSE,
    F_SCHEMA_VERSION,
};

static PyTypeObject *event_type = NULL;
static Py_ssize_t offsets[NFIELDS];
static PyObject *disposals = NULL; /* tuple of str, by enum index */

/* Python's date range, as days since 1970-01-01: date(1, 1, 1) .. date(9999, 12, 31) */
#define FIRST_DAY (-719162LL)
#define LAST_DAY (2932896LL)
#define MS_PER_DAY 86400000LL

typedef struct {
    const unsigned char *p;
    Py_ssize_t pos, len;
} Reader;

/* A zig-zag varint of at most 64 bits; 0 if it runs past the end or is longer. */
static int read_long(Reader *r, long long *out) {
    unsigned long long n = 0;
    int shift = 0;
    for (;;) {
        if (r->pos >= r->len || shift > 63)
            return 0;
        unsigned char b = r->p[r->pos++];
        if (shift == 63 && (b & 0x7E))
            return 0; /* past 64 bits */
        n |= (unsigned long long)(b & 0x7F) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
    }
    *out = (long long)((n >> 1) ^ (~(n & 1) + 1));
    return 1;
}

/* A string: a new reference, or NULL with no error set (a bad length or UTF-8). */
static PyObject *read_text(Reader *r) {
    long long n;
    if (!read_long(r, &n) || n < 0 || n > r->len - r->pos)
        return NULL;
    PyObject *s = PyUnicode_DecodeUTF8((const char *)r->p + r->pos, (Py_ssize_t)n, NULL);
    if (s == NULL) {
        PyErr_Clear();
        return NULL;
    }
    r->pos += (Py_ssize_t)n;
    return s;
}

/* A ["null", "string"] union: 1 and a new reference (Py_None for null), or 0. */
static int read_opt_text(Reader *r, PyObject **out) {
    if (r->pos >= r->len)
        return 0;
    unsigned char branch = r->p[r->pos++];
    if (branch == 0) {
        *out = Py_NewRef(Py_None);
        return 1;
    }
    if (branch != 2)
        return 0;
    *out = read_text(r);
    return *out != NULL;
}

/* Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar. */
static void civil(long long z, int *y, int *m, int *d) {
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static PyObject *make_date(long long days) {
    if (days < FIRST_DAY || days > LAST_DAY)
        return NULL;
    int y, m, d;
    civil(days, &y, &m, &d);
    return PyDate_FromDate(y, m, d);
}

/* Milliseconds since the epoch -> an aware datetime in UTC, as 1970-01-01T00:00Z + timedelta. */
static PyObject *make_instant(long long millis) {
    long long days = millis / MS_PER_DAY, rem = millis % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days -= 1;
    }
    if (days < FIRST_DAY || days > LAST_DAY)
        return NULL;
    int y, m, d;
    civil(days, &y, &m, &d);
    int ms = (int)(rem % 1000), s = (int)(rem / 1000);
    return PyDateTimeAPI->DateTime_FromDateAndTime(
        y, m, d, s / 3600, (s / 60) % 60, s % 60, ms * 1000, PyDateTime_TimeZone_UTC,
        PyDateTimeAPI->DateTimeType);
}

static PyObject *read_event(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() was not called");
        return NULL;
    }
    if (nargs != 2 || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "read(data: bytes, start: int)");
        return NULL;
    }
    if (!PyBytes_Check(args[0]))
        Py_RETURN_NONE; /* another bytes-like value: fastavro reads it */
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(args[0]), 0, PyBytes_GET_SIZE(args[0])};
    r.pos = PyLong_AsSsize_t(args[1]);
    if (r.pos == -1 && PyErr_Occurred())
        return NULL;
    if (r.pos < 0)
        Py_RETURN_NONE;

    PyObject *v[NFIELDS] = {NULL};
    long long version, index, days, millis;
    if (!read_long(&r, &version))
        goto none;
    if (!(v[F_EVENT_ID] = read_text(&r)) || !(v[F_FORCE_ID] = read_text(&r)) ||
        !(v[F_CRIME_REF] = read_text(&r)))
        goto none;
    if (!read_opt_text(&r, &v[F_OFFENCE_CODE]) || !read_opt_text(&r, &v[F_CRIME_TYPE]))
        goto none;
    /* outcome_number: ["null", "int"] */
    if (r.pos >= r.len)
        goto none;
    unsigned char branch = r.p[r.pos++];
    if (branch == 0) {
        v[F_OUTCOME_NUMBER] = Py_NewRef(Py_None);
    } else if (branch == 2) {
        long long number;
        if (!read_long(&r, &number) || number < INT32_MIN || number > INT32_MAX)
            goto none;
        if (!(v[F_OUTCOME_NUMBER] = PyLong_FromLongLong(number)))
            goto error;
    } else {
        goto none;
    }
    /* disposal: an enum */
    if (!read_long(&r, &index) || index < 0 || index >= PyTuple_GET_SIZE(disposals))
        goto none;
    v[F_DISPOSAL] = Py_NewRef(PyTuple_GET_ITEM(disposals, index));
    if (!read_opt_text(&r, &v[F_OUTCOME_TEXT]))
        goto none;
    if (!read_long(&r, &days) || !(v[F_OUTCOME_DATE] = make_date(days)))
        goto none_or_error;
    if (!read_long(&r, &millis) || !(v[F_RECORDED_AT] = make_instant(millis)))
        goto none_or_error;
    /* domestic_abuse: ["null", "boolean"] */
    if (r.pos >= r.len)
        goto none;
    unsigned char flag = r.p[r.pos++];
    if (flag == 0) {
        v[F_DOMESTIC_ABUSE] = Py_NewRef(Py_None);
    } else if (flag == 2 && r.pos < r.len && r.p[r.pos] <= 1) {
        v[F_DOMESTIC_ABUSE] = Py_NewRef(r.p[r.pos++] ? Py_True : Py_False);
    } else {
        goto none;
    }
    if (!(v[F_SOURCE_SYSTEM] = read_text(&r)))
        goto none;
    if (r.pos != r.len || version < INT32_MIN || version > INT32_MAX)
        goto none;
    if (!(v[F_SCHEMA_VERSION] = PyLong_FromLongLong(version)))
        goto error;

    PyObject *event = event_type->tp_alloc(event_type, 0);
    if (event == NULL)
        goto error;
    for (int i = 0; i < NFIELDS; i++)
        *(PyObject **)((char *)event + offsets[i]) = v[i]; /* the references move to the event */
    return event;

none_or_error:
    if (PyErr_Occurred())
        goto error;
none:
    for (int i = 0; i < NFIELDS; i++)
        Py_XDECREF(v[i]);
    Py_RETURN_NONE;
error:
    for (int i = 0; i < NFIELDS; i++)
        Py_XDECREF(v[i]);
    return NULL;
}

/* configure(cls, descriptors, disposals): the event class, the member descriptors of its slots
 * in the order of the fields above, and the disposal classes by enum index. */
static PyObject *configure(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *cls, *descriptors, *names;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyType_Type, &cls, &PyTuple_Type, &descriptors,
                          &PyTuple_Type, &names))
        return NULL;
    if (PyTuple_GET_SIZE(descriptors) != NFIELDS) {
        PyErr_Format(PyExc_ValueError, "%d slot descriptors expected", NFIELDS);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(names, i))) {
            PyErr_SetString(PyExc_TypeError, "disposal classes must be str");
            return NULL;
        }
    }
    Py_ssize_t found[NFIELDS];
    for (int i = 0; i < NFIELDS; i++) {
        PyObject *d = PyTuple_GET_ITEM(descriptors, i);
        if (!Py_IS_TYPE(d, &PyMemberDescr_Type) ||
            ((PyDescrObject *)d)->d_type != (PyTypeObject *)cls) {
            PyErr_Format(PyExc_TypeError, "field %d is not a slot of %R", i, cls);
            return NULL;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)d)->d_member;
        if (member->type != T_OBJECT_EX || member->flags & READONLY) {
            PyErr_Format(PyExc_TypeError, "field %d of %R is not an object slot", i, cls);
            return NULL;
        }
        found[i] = member->offset;
    }
    Py_INCREF(cls);
    Py_XSETREF(event_type, (PyTypeObject *)cls);
    Py_INCREF(names);
    Py_XSETREF(disposals, names);
    memcpy(offsets, found, sizeof(offsets));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"read", (PyCFunction)(void (*)(void))read_event, METH_FASTCALL,
     "read(data, start) -> OutcomeEvent | None: the event in data from start, or None."},
    {"configure", configure, METH_VARARGS,
     "configure(cls, slot_descriptors, disposal_classes): what read builds."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "streams.codec._event_reader",
    .m_doc = "The counting path's event reader, compiled (see streams.codec.events).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__event_reader(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
