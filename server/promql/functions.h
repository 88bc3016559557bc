/* functions: the table of PromQL functions: names, argument and return types, and an id
 * the evaluator dispatches on. The parser uses the signatures for type checking; the
 * evaluator (funcs.c) implements each id. */
#ifndef PROMQL_FUNCTIONS_H
#define PROMQL_FUNCTIONS_H

#include "ast.h"

#include <stddef.h>

enum promql_fn_id {
    FN_ABS, FN_ABSENT, FN_ABSENT_OVER_TIME, FN_ACOS, FN_ACOSH, FN_ASIN, FN_ASINH, FN_ATAN,
    FN_ATANH, FN_AVG_OVER_TIME, FN_CEIL, FN_CHANGES, FN_CLAMP, FN_CLAMP_MAX, FN_CLAMP_MIN,
    FN_COS, FN_COSH, FN_COUNT_OVER_TIME, FN_DAY_OF_MONTH, FN_DAY_OF_WEEK, FN_DAY_OF_YEAR,
    FN_DAYS_IN_MONTH, FN_DEG, FN_DELTA, FN_DERIV, FN_DOUBLE_EXPONENTIAL_SMOOTHING, FN_EXP,
    FN_FLOOR, FN_HISTOGRAM_QUANTILE, FN_HOUR, FN_IDELTA, FN_INCREASE, FN_IRATE,
    FN_LABEL_JOIN, FN_LABEL_REPLACE, FN_LAST_OVER_TIME, FN_LN, FN_LOG10, FN_LOG2,
    FN_MAD_OVER_TIME, FN_MAX_OVER_TIME, FN_MIN_OVER_TIME, FN_MINUTE, FN_MONTH, FN_PI,
    FN_PREDICT_LINEAR, FN_PRESENT_OVER_TIME, FN_QUANTILE_OVER_TIME, FN_RAD, FN_RATE,
    FN_RESETS, FN_ROUND, FN_SCALAR, FN_SGN, FN_SIN, FN_SINH, FN_SORT, FN_SORT_BY_LABEL,
    FN_SORT_BY_LABEL_DESC, FN_SORT_DESC, FN_SQRT, FN_STDDEV_OVER_TIME, FN_STDVAR_OVER_TIME,
    FN_SUM_OVER_TIME, FN_TAN, FN_TANH, FN_TIME, FN_TIMESTAMP, FN_VECTOR, FN_YEAR,
    /* Prometheus 3 experimental functions (promql-experimental-functions) */
    FN_END, FN_FIRST_OVER_TIME, FN_HISTOGRAM_FRACTION, FN_HISTOGRAM_QUANTILES, FN_MAX_OF,
    FN_MIN_OF, FN_RANGE, FN_START, FN_STEP, FN_TS_OF_FIRST_OVER_TIME, FN_TS_OF_LAST_OVER_TIME,
    FN_TS_OF_MAX_OVER_TIME, FN_TS_OF_MIN_OVER_TIME,
    FN_COUNT_ /* number of ids */
};

#define PROMQL_MAX_FN_ARGS 5 /* label_replace declares 5 */

struct promql_function {
    const char *name;
    enum promql_fn_id id;
    enum promql_type args[PROMQL_MAX_FN_ARGS]; /* declared argument types */
    int nargs;          /* declared count */
    int variadic;       /* as Prometheus: 0 = exactly nargs arguments; otherwise at least
                           nargs - 1, and at most nargs - 1 + variadic (variadic > 0) or
                           without limit (variadic = -1), the extra ones of the last
                           declared type. round(v[, to_nearest]) is {vector, scalar} with
                           variadic 1; label_join is {vector, string, string, string}
                           with variadic -1; day_of_month([v]) is {vector} with 1. */
    enum promql_type ret;
};

/* The function named name (len bytes), or NULL when there is none. */
const struct promql_function *promql_function_lookup(const char *name, size_t len);
/* Minimum number of arguments a call must have. */
int promql_function_min_args(const struct promql_function *f);

#endif
