/* functions: the PromQL function table (see functions.h).
 *
 * Signatures are Prometheus 3's (promql/parser/functions.go): argument types, the
 * variadic rule and the return type, which the parser uses for checkAST-style type
 * checking. Prometheus marks mad_over_time, sort_by_label(_desc),
 * double_exponential_smoothing, first_over_time, ts_of_{first,last,min,max}_over_time,
 * histogram_quantiles, min_of / max_of and the query-parameter scalars step(), range(),
 * start(), end() experimental (behind --enable-feature=promql-experimental-functions,
 * which its own test harness enables); Vigil has them on. histogram_fraction is
 * evaluated on classic buckets only. The table is sorted by name (strcmp order) so a
 * lookup is a binary search; it is constant and thread-safe. */
#include "functions.h"

#include <string.h>

#define V PT_VECTOR
#define M PT_MATRIX
#define S PT_SCALAR
#define STR PT_STRING

/* name, id, {args}, nargs, variadic, ret */
static const struct promql_function table[] = {
    { "abs", FN_ABS, { V }, 1, 0, V },
    { "absent", FN_ABSENT, { V }, 1, 0, V },
    { "absent_over_time", FN_ABSENT_OVER_TIME, { M }, 1, 0, V },
    { "acos", FN_ACOS, { V }, 1, 0, V },
    { "acosh", FN_ACOSH, { V }, 1, 0, V },
    { "asin", FN_ASIN, { V }, 1, 0, V },
    { "asinh", FN_ASINH, { V }, 1, 0, V },
    { "atan", FN_ATAN, { V }, 1, 0, V },
    { "atanh", FN_ATANH, { V }, 1, 0, V },
    { "avg_over_time", FN_AVG_OVER_TIME, { M }, 1, 0, V },
    { "ceil", FN_CEIL, { V }, 1, 0, V },
    { "changes", FN_CHANGES, { M }, 1, 0, V },
    { "clamp", FN_CLAMP, { V, S, S }, 3, 0, V },
    { "clamp_max", FN_CLAMP_MAX, { V, S }, 2, 0, V },
    { "clamp_min", FN_CLAMP_MIN, { V, S }, 2, 0, V },
    { "cos", FN_COS, { V }, 1, 0, V },
    { "cosh", FN_COSH, { V }, 1, 0, V },
    { "count_over_time", FN_COUNT_OVER_TIME, { M }, 1, 0, V },
    { "day_of_month", FN_DAY_OF_MONTH, { V }, 1, 1, V },
    { "day_of_week", FN_DAY_OF_WEEK, { V }, 1, 1, V },
    { "day_of_year", FN_DAY_OF_YEAR, { V }, 1, 1, V },
    { "days_in_month", FN_DAYS_IN_MONTH, { V }, 1, 1, V },
    { "deg", FN_DEG, { V }, 1, 0, V },
    { "delta", FN_DELTA, { M }, 1, 0, V },
    { "deriv", FN_DERIV, { M }, 1, 0, V },
    { "double_exponential_smoothing", FN_DOUBLE_EXPONENTIAL_SMOOTHING, { M, S, S }, 3, 0, V },
    { "end", FN_END, { PT_NONE }, 0, 0, S },
    { "exp", FN_EXP, { V }, 1, 0, V },
    { "first_over_time", FN_FIRST_OVER_TIME, { M }, 1, 0, V },
    { "floor", FN_FLOOR, { V }, 1, 0, V },
    { "histogram_fraction", FN_HISTOGRAM_FRACTION, { S, S, V }, 3, 0, V },
    { "histogram_quantile", FN_HISTOGRAM_QUANTILE, { S, V }, 2, 0, V },
    { "histogram_quantiles", FN_HISTOGRAM_QUANTILES, { V, STR, S, S }, 4, 9, V },
    { "hour", FN_HOUR, { V }, 1, 1, V },
    { "idelta", FN_IDELTA, { M }, 1, 0, V },
    { "increase", FN_INCREASE, { M }, 1, 0, V },
    { "irate", FN_IRATE, { M }, 1, 0, V },
    { "label_join", FN_LABEL_JOIN, { V, STR, STR, STR }, 4, -1, V },
    { "label_replace", FN_LABEL_REPLACE, { V, STR, STR, STR, STR }, 5, 0, V },
    { "last_over_time", FN_LAST_OVER_TIME, { M }, 1, 0, V },
    { "ln", FN_LN, { V }, 1, 0, V },
    { "log10", FN_LOG10, { V }, 1, 0, V },
    { "log2", FN_LOG2, { V }, 1, 0, V },
    { "mad_over_time", FN_MAD_OVER_TIME, { M }, 1, 0, V },
    { "max_of", FN_MAX_OF, { S, S }, 2, 0, S },
    { "max_over_time", FN_MAX_OVER_TIME, { M }, 1, 0, V },
    { "min_of", FN_MIN_OF, { S, S }, 2, 0, S },
    { "min_over_time", FN_MIN_OVER_TIME, { M }, 1, 0, V },
    { "minute", FN_MINUTE, { V }, 1, 1, V },
    { "month", FN_MONTH, { V }, 1, 1, V },
    { "pi", FN_PI, { PT_NONE }, 0, 0, S },
    { "predict_linear", FN_PREDICT_LINEAR, { M, S }, 2, 0, V },
    { "present_over_time", FN_PRESENT_OVER_TIME, { M }, 1, 0, V },
    { "quantile_over_time", FN_QUANTILE_OVER_TIME, { S, M }, 2, 0, V },
    { "rad", FN_RAD, { V }, 1, 0, V },
    { "range", FN_RANGE, { PT_NONE }, 0, 0, S },
    { "rate", FN_RATE, { M }, 1, 0, V },
    { "resets", FN_RESETS, { M }, 1, 0, V },
    { "round", FN_ROUND, { V, S }, 2, 1, V },
    { "scalar", FN_SCALAR, { V }, 1, 0, S },
    { "sgn", FN_SGN, { V }, 1, 0, V },
    { "sin", FN_SIN, { V }, 1, 0, V },
    { "sinh", FN_SINH, { V }, 1, 0, V },
    { "sort", FN_SORT, { V }, 1, 0, V },
    { "sort_by_label", FN_SORT_BY_LABEL, { V, STR }, 2, -1, V },
    { "sort_by_label_desc", FN_SORT_BY_LABEL_DESC, { V, STR }, 2, -1, V },
    { "sort_desc", FN_SORT_DESC, { V }, 1, 0, V },
    { "sqrt", FN_SQRT, { V }, 1, 0, V },
    { "start", FN_START, { PT_NONE }, 0, 0, S },
    { "stddev_over_time", FN_STDDEV_OVER_TIME, { M }, 1, 0, V },
    { "stdvar_over_time", FN_STDVAR_OVER_TIME, { M }, 1, 0, V },
    { "step", FN_STEP, { PT_NONE }, 0, 0, S },
    { "sum_over_time", FN_SUM_OVER_TIME, { M }, 1, 0, V },
    { "tan", FN_TAN, { V }, 1, 0, V },
    { "tanh", FN_TANH, { V }, 1, 0, V },
    { "time", FN_TIME, { PT_NONE }, 0, 0, S },
    { "timestamp", FN_TIMESTAMP, { V }, 1, 0, V },
    { "ts_of_first_over_time", FN_TS_OF_FIRST_OVER_TIME, { M }, 1, 0, V },
    { "ts_of_last_over_time", FN_TS_OF_LAST_OVER_TIME, { M }, 1, 0, V },
    { "ts_of_max_over_time", FN_TS_OF_MAX_OVER_TIME, { M }, 1, 0, V },
    { "ts_of_min_over_time", FN_TS_OF_MIN_OVER_TIME, { M }, 1, 0, V },
    { "vector", FN_VECTOR, { S }, 1, 0, V },
    { "year", FN_YEAR, { V }, 1, 1, V },
};

_Static_assert(sizeof table / sizeof table[0] == FN_COUNT_, "one row per function id");

const struct promql_function *promql_function_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = sizeof table / sizeof table[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *n = table[mid].name;
        size_t nl = strlen(n);
        int c = memcmp(name, n, len < nl ? len : nl);
        if (c == 0)
            c = len < nl ? -1 : len > nl;
        if (c == 0)
            return &table[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int promql_function_min_args(const struct promql_function *f)
{
    return f->variadic ? f->nargs - 1 : f->nargs;
}
