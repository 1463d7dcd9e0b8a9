/* test_listq.c - List filter/order/paging to SQL: exact fragments, every
 * rejection, input only ever in parameters, page tokens, page sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/listq.h"

static const lq_enum_value roles[] = {{"ROLE_ADMIN", 3}, {"ROLE_MEMBER", 1}};

static const lq_field fields[] = {
    {.name = "username",
     .column = "u.username",
     .type = LQ_STRING,
     .filterable = true,
     .orderable = true,
     .wildcard = true},
    {.name = "email", .column = "u.email", .type = LQ_STRING, .filterable = true},
    {.name = "disabled", .column = "u.disabled", .type = LQ_BOOL, .filterable = true},
    {.name = "role",
     .column = "u.role",
     .type = LQ_ENUM,
     .enums = roles,
     .nenums = 2,
     .filterable = true},
    {.name = "uid", .column = "u.uid", .type = LQ_INT, .filterable = true, .orderable = true},
    {.name = "create_time",
     .column = "u.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "labels", .column = "u.labels", .type = LQ_LABELS, .filterable = true},
    {.name = "display_name", .column = "u.display_name", .type = LQ_STRING, .orderable = true},
};

static const lq_spec spec = {fields, sizeof(fields) / sizeof(fields[0]), "username", "u.id", 50,
                             500};

#define FILTERABLE "username, email, disabled, role, uid, create_time, labels"
#define ORDERABLE "username, uid, create_time, display_name"

static lq_query q; /* ~9 KB: keep it off the test's stack */
static char err[256];

static int build(const char *filter, const char *order_by, int page_size, const char *token) {
  err[0] = '\0';
  return lq_build(&spec, filter, order_by, page_size, token, "users|projects/p1", 1, &q, err,
                  sizeof(err));
}

/* Builds a filter that must succeed and yield exactly `where` and these params. */
static void expect_where(const char *filter, const char *where, int nvalues, ...) {
  if (build(filter, NULL, 0, NULL) != 0) fail_msg("filter '%s': %s", filter, err);
  assert_string_equal(q.where, where);
  assert_int_equal(q.nparams, nvalues + 2);
  va_list ap;
  va_start(ap, nvalues);
  for (int i = 0; i < nvalues; i++)
    assert_string_equal(q.params[i], va_arg(ap, const char *));
  va_end(ap);
}

static void expect_error(const char *filter, const char *order_by, int page_size, const char *token,
                         const char *message) {
  memset(&q, 0x5a, sizeof(q));
  if (build(filter, order_by, page_size, token) == 0)
    fail_msg("accepted filter '%s' order_by '%s'", filter ? filter : "(null)",
             order_by ? order_by : "(null)");
  assert_string_equal(err, message);
  assert_string_equal(q.where, "");
  assert_int_equal(q.nparams, 0);
}

static void defaults_for_an_empty_request(void **state) {
  assert_int_equal(build(NULL, NULL, 0, NULL), 0);
  assert_string_equal(q.where, "");
  assert_string_equal(q.order, " ORDER BY u.username, u.id");
  assert_string_equal(q.limit, " LIMIT $1 OFFSET $2");
  assert_int_equal(q.nparams, 2);
  assert_string_equal(q.params[0], "50");
  assert_string_equal(q.params[1], "0");
  assert_int_equal(q.page_size, 50);
  assert_int_equal(q.offset, 0);
  assert_int_equal(build("   ", "", 0, ""), 0);
  assert_string_equal(q.where, "");
}

static void filters_become_exact_sql(void **state) {
  expect_where("username = \"alice\"", " AND (u.username = $1)", 1, "alice");
  expect_where("email != \"a@b.c\"", " AND (u.email IS DISTINCT FROM $1)", 1, "a@b.c");
  expect_where("username >= \"m\" AND username < \"n\"",
               " AND (u.username >= $1) AND (u.username < $2)", 2, "m", "n");
  expect_where("disabled = false AND role != ROLE_ADMIN",
               " AND (u.disabled = $1::boolean) AND (u.role IS DISTINCT FROM $2::integer)", 2,
               "false", "3");
  expect_where("uid<=-42", " AND (u.uid <= $1::bigint)", 1, "-42");
  expect_where("uid > 0007", " AND (u.uid > $1::bigint)", 1, "7");
  expect_where("uid = 9223372036854775807", " AND (u.uid = $1::bigint)", 1, "9223372036854775807");
  expect_where("create_time >= \"2024-02-29T23:59:59.123456+05:30\"",
               " AND (u.created_at >= $1::timestamptz)", 1, "2024-02-29T23:59:59.123456+05:30");
  expect_where("create_time < \"2024-01-31t12:00:00z\"", " AND (u.created_at < $1::timestamptz)", 1,
               "2024-01-31T12:00:00Z");
  expect_where("labels.env = \"prod\" AND labels.team-a.x_1 != \"\"",
               " AND ((u.labels ->> $1::text) = $2::text)"
               " AND ((u.labels ->> $3::text) IS DISTINCT FROM $4::text)",
               4, "env", "prod", "team-a.x_1", "");
  expect_where("username=\"a\"AND uid=1", " AND (u.username = $1) AND (u.uid = $2::bigint)", 2, "a",
               "1");
  expect_where("email = \"caf\xc3\xa9 \\\"q\\\" \\\\\"", " AND (u.email = $1)", 1,
               "caf\xc3\xa9 \"q\" \\");
  expect_where("email = \"a*b\"", " AND (u.email = $1)", 1, "a*b"); /* inner * is literal */
}

static void prefix_match_escapes_like_metacharacters(void **state) {
  expect_where("username = \"adm*\"", " AND (u.username LIKE $1)", 1, "adm%");
  expect_where("username = \"a%b_c\\\\*\"", " AND (u.username LIKE $1)", 1, "a\\%b\\_c\\\\%");
  expect_where("username = \"*\"", " AND (u.username LIKE $1)", 1, "%");
}

static void placeholders_start_at_first_param(void **state) {
  assert_int_equal(lq_build(&spec, "uid = 1 AND labels.k = \"v\"", "uid desc", 10, NULL, "fp", 3,
                            &q, err, sizeof(err)),
                   0);
  assert_string_equal(q.where,
                      " AND (u.uid = $3::bigint) AND ((u.labels ->> $4::text) = $5::text)");
  assert_string_equal(q.order, " ORDER BY u.uid DESC, u.id");
  assert_string_equal(q.limit, " LIMIT $6 OFFSET $7");
  assert_int_equal(q.nparams, 5);
  assert_string_equal(q.params[3], "10");
  assert_string_equal(q.params[4], "0");
}

static void order_by_lists(void **state) {
  static const struct {
    const char *in, *sql;
  } cases[] = {
      {"uid", " ORDER BY u.uid, u.id"},
      {"create_time desc", " ORDER BY u.created_at DESC, u.id"},
      {" create_time DESC ,username asc,  uid ASC ",
       " ORDER BY u.created_at DESC, u.username, u.uid, u.id"},
      {"display_name", " ORDER BY u.display_name, u.id"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (build(NULL, cases[i].in, 0, NULL) != 0) fail_msg("order_by '%s': %s", cases[i].in, err);
    assert_string_equal(q.order, cases[i].sql);
  }
  /* a default_order in order_by syntax */
  lq_spec newest_first = spec;
  newest_first.default_order = "create_time desc";
  assert_int_equal(lq_build(&newest_first, NULL, NULL, 0, NULL, "", 1, &q, err, sizeof(err)), 0);
  assert_string_equal(q.order, " ORDER BY u.created_at DESC, u.id");
  newest_first.default_order = NULL;
  assert_int_equal(lq_build(&newest_first, NULL, NULL, 0, NULL, "", 1, &q, err, sizeof(err)), 0);
  assert_string_equal(q.order, " ORDER BY u.id");
}

static void filter_rejections(void **state) {
  static const struct {
    const char *filter, *message;
  } cases[] = {
      {"passwd = \"x\"", "filter: unknown field \"passwd\" (filterable: " FILTERABLE ")"},
      {"display_name = \"x\"",
       "filter: field \"display_name\" is not filterable (filterable: " FILTERABLE ")"},
      {"uid = 1 OR uid = 2", "filter: OR is not supported (join terms with AND)"},
      {"uid = 1 or uid = 2", "filter: OR is not supported (join terms with AND)"},
      {"OR uid = 2", "filter: OR is not supported (join terms with AND)"},
      {"NOT disabled = true", "filter: NOT is not supported"},
      {"uid = 1 AND NOT disabled = true", "filter: NOT is not supported"},
      {"-disabled = true", "filter: negation (\"-\") is not supported"},
      {"(uid = 1)", "filter: parentheses are not supported"},
      {"uid = 1 AND (uid = 2)", "filter: parentheses are not supported"},
      {"uid = (1)", "filter: parentheses are not supported"},
      {"uid = 1)", "filter: parentheses are not supported"},
      {"uid = 1 and uid = 2", "filter: write AND in upper case"},
      {"uid = 1 uid = 2", "filter: expected AND between terms, found \"uid\""},
      {"uid = 1 AND", "filter: empty term after AND"},
      {"uid = 1 AND  ", "filter: empty term after AND"},
      {"AND uid = 1", "filter: empty term before AND"},
      {"uid = 1 AND AND uid = 2", "filter: empty term before AND"},
      {"uid", "filter: expected an operator (=, !=, <, <=, >, >=) after \"uid\""},
      {"uid 1", "filter: expected an operator (=, !=, <, <=, >, >=) after \"uid\""},
      {"username : \"a\"", "filter: operator \":\" is not supported (use =, !=, <, <=, >, >=)"},
      {"uid == 1", "filter: operator \"==\" is not supported (use =, !=, <, <=, >, >=)"},
      {"username ~ \"a\"", "filter: operator \"~\" is not supported (use =, !=, <, <=, >, >=)"},
      {"uid =", "filter: missing value after \"uid =\""},
      {"uid = ,", "filter: missing value after \"uid =\""},
      {"uid = 1, uid = 2", "filter: unexpected \",\" at offset 7"},
      {"1 = uid", "filter: unexpected \"1\" at offset 0"},
      {"\xc3\xa9 = 1", "filter: unexpected character at offset 0"},
      {"uid = \"1\"", "filter: field \"uid\" expects an integer"},
      {"uid = 1.5", "filter: field \"uid\" expects an integer"},
      {"uid = 12abc", "filter: field \"uid\" expects an integer"},
      {"uid = +3", "filter: field \"uid\" expects an integer"},
      {"uid = 9223372036854775808", "filter: value for \"uid\" is out of range"},
      {"disabled = yes", "filter: field \"disabled\" expects true or false"},
      {"disabled = \"true\"", "filter: field \"disabled\" expects true or false"},
      {"disabled = TRUE", "filter: field \"disabled\" expects true or false"},
      {"disabled < true", "filter: field \"disabled\" supports only = and !="},
      {"role = ROLE_OWNER", "filter: field \"role\" expects one of ROLE_ADMIN, ROLE_MEMBER"},
      {"role = \"ROLE_ADMIN\"", "filter: field \"role\" expects one of ROLE_ADMIN, ROLE_MEMBER"},
      {"role = role_admin", "filter: field \"role\" expects one of ROLE_ADMIN, ROLE_MEMBER"},
      {"role > ROLE_MEMBER", "filter: field \"role\" supports only = and !="},
      {"username = alice",
       "filter: field \"username\" expects a quoted string, e.g. username = \"abc\""},
      {"email = \"ab*\"", "filter: field \"email\" does not support prefix match (\"...*\")"},
      {"username != \"ab*\"", "filter: prefix match (\"...*\") works only with ="},
      {"username > \"ab*\"", "filter: prefix match (\"...*\") works only with ="},
      {"username = \"abc", "filter: unterminated string"},
      {"username = \"abc\\", "filter: unterminated string"},
      {"username = \"a\\nb\"", "filter: unsupported escape in string (only \\\" and \\\\)"},
      {"username = \"a\\'b\"", "filter: unsupported escape in string (only \\\" and \\\\)"},
      {"create_time > 2024-01-01T00:00:00Z",
       "filter: field \"create_time\" expects a quoted RFC 3339 timestamp, "
       "e.g. \"2024-01-31T12:00:00Z\""},
      {"labels = \"x\"", "filter: filter by label as labels.KEY = \"value\""},
      {"labels.Env = \"x\"", "filter: invalid label key \"Env\" (1-63 of a-z, 0-9, _ . -)"},
      {"labels. = \"x\"", "filter: invalid label key \"\" (1-63 of a-z, 0-9, _ . -)"},
      {"labels.env = prod", "filter: label values are quoted strings, e.g. labels.env = \"prod\""},
      {"labels.env = \"pr*\"", "filter: field \"labels\" does not support prefix match (\"...*\")"},
      {"labels.env > \"a\"", "filter: field \"labels\" supports only = and !="},
      {"uid.x = 1", "filter: field \"uid\" has no subfields"},
      {"username = \"a\tb\"", "filter: control character at offset 13"},
      {"uid = 1\nAND uid = 2", "filter: control character at offset 7"},
      {"username = \"\x7f\"", "filter: control character at offset 12"},
      {"username = \"\xff\"", "filter: not valid UTF-8"},
      {"username = \"\xc0\xaf\"", "filter: not valid UTF-8"},         /* overlong "/" */
      {"username = \"\xed\xa0\x80\"", "filter: not valid UTF-8"},     /* surrogate */
      {"username = \"\xf4\x90\x80\x80\"", "filter: not valid UTF-8"}, /* > U+10FFFF */
      {"username = \"\xe2\x82\"", "filter: not valid UTF-8"},         /* truncated */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    expect_error(cases[i].filter, NULL, 0, NULL, cases[i].message);
}

static void timestamps_are_validated(void **state) {
  static const char *bad[] = {
      "2024-13-01T00:00:00Z",
      "2024-00-10T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "2100-02-29T00:00:00Z",
      "2024-04-31T00:00:00Z",
      "2024-01-01T24:00:00Z",
      "2024-01-01T00:60:00Z",
      "2024-01-01T00:00:60Z",
      "0000-01-01T00:00:00Z",
      "2024-01-01 00:00:00Z",
      "2024-01-01T00:00:00",
      "2024-01-01T00:00:00.Z",
      "2024-01-01T00:00:00.1234567890Z",
      "2024-01-01T00:00:00+24:00",
      "2024-01-01T00:00:00+05:60",
      "2024-01-01T00:00:00+0530",
      "2024-1-01T00:00:00Z",
      "2024-01-01T00:00:00Zjunk",
      "2024-01-01",
      "",
      "now",
  };
  char filter[128];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(filter, sizeof(filter), "create_time > \"%s\"", bad[i]);
    expect_error(filter, NULL, 0, NULL,
                 "filter: field \"create_time\" expects a quoted RFC 3339 timestamp, "
                 "e.g. \"2024-01-31T12:00:00Z\"");
  }
  static const char *good[] = {"2000-02-29T00:00:00Z", "0001-01-01T00:00:00Z",
                               "9999-12-31T23:59:59.999999999-23:59",
                               "2024-06-30T12:34:56.5+00:00"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    snprintf(filter, sizeof(filter), "create_time > \"%s\"", good[i]);
    if (build(filter, NULL, 0, NULL) != 0) fail_msg("rejected %s: %s", good[i], err);
    assert_string_equal(q.params[0], good[i]);
  }
}

static void size_and_count_limits(void **state) {
  char filter[LQ_MAX_FILTER + 64];
  /* exactly LQ_MAX_FILTER bytes is fine, one more is not */
  size_t head = strlen("email = \"");
  memcpy(filter, "email = \"", head);
  memset(filter + head, 'x', LQ_MAX_FILTER - head - 1);
  filter[LQ_MAX_FILTER - 1] = '"';
  filter[LQ_MAX_FILTER] = '\0';
  assert_int_equal(build(filter, NULL, 0, NULL), 0);
  assert_int_equal(strlen(q.params[0]), LQ_MAX_FILTER - head - 1);
  memmove(filter + head + 1, filter + head, LQ_MAX_FILTER - head + 1);
  expect_error(filter, NULL, 0, NULL, "filter: longer than 1024 bytes");

  /* LQ_MAX_PARAMS - 2 values fit; one more is too many */
  size_t len = 0;
  filter[0] = '\0';
  for (int i = 0; i < LQ_MAX_PARAMS - 2; i++)
    len += (size_t)snprintf(filter + len, sizeof(filter) - len, "%suid = %d", i ? " AND " : "", i);
  assert_int_equal(build(filter, NULL, 0, NULL), 0);
  assert_int_equal(q.nparams, LQ_MAX_PARAMS);
  assert_string_equal(q.limit, " LIMIT $31 OFFSET $32");
  snprintf(filter + len, sizeof(filter) - len, " AND uid = 99");
  expect_error(filter, NULL, 0, NULL, "filter: too many terms");
  /* a labels term takes two */
  len = 0;
  for (int i = 0; i < (LQ_MAX_PARAMS - 2) / 2; i++)
    len += (size_t)snprintf(filter + len, sizeof(filter) - len, "%slabels.k%d = \"v\"",
                            i ? " AND " : "", i);
  assert_int_equal(build(filter, NULL, 0, NULL), 0);
  snprintf(filter + len, sizeof(filter) - len, " AND uid = 1");
  expect_error(filter, NULL, 0, NULL, "filter: too many terms");

  /* a long unknown name is quoted shortened */
  memset(filter, 'a', 300);
  snprintf(filter + 300, sizeof(filter) - 300, " = 1");
  assert_int_not_equal(build(filter, NULL, 0, NULL), 0);
  assert_true(strlen(err) < 120);
}

static void order_by_rejections(void **state) {
  static const struct {
    const char *order_by, *message;
  } cases[] = {
      {"passwd", "order_by: unknown field \"passwd\" (orderable: " ORDERABLE ")"},
      {"email", "order_by: field \"email\" is not orderable (orderable: " ORDERABLE ")"},
      {"uid, username, create_time, display_name", "order_by: at most 3 fields"},
      {"uid, uid desc", "order_by: field \"uid\" appears twice"},
      {"uid,", "order_by: empty field name"},
      {",uid", "order_by: empty field name"},
      {"uid,,username", "order_by: empty field name"},
      {"uid descending",
       "order_by: cannot parse \"uid descending\" (expected \"field [asc|desc]\")"},
      {"uid desc nulls",
       "order_by: cannot parse \"uid desc nulls\" (expected \"field [asc|desc]\")"},
      {"uid; DROP TABLE users",
       "order_by: cannot parse \"uid; DROP TABLE users\" (expected \"field [asc|desc]\")"},
      {"u.id", "order_by: unknown field \"u.id\" (orderable: " ORDERABLE ")"},
      {"uid\tdesc", "order_by: control character at offset 3"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    expect_error(NULL, cases[i].order_by, 0, NULL, cases[i].message);
  char longer[LQ_MAX_ORDER_BY + 2];
  memset(longer, ' ', sizeof(longer) - 1);
  longer[sizeof(longer) - 1] = '\0';
  expect_error(NULL, longer, 0, NULL, "order_by: longer than 256 bytes");
}

/* Every byte of the SQL fragments is one of these, whatever the input was. */
static void assert_sql_is_ours(const lq_query *qq) {
  const char *parts[] = {qq->where, qq->order, qq->limit};
  for (int p = 0; p < 3; p++)
    for (const char *c = parts[p]; *c; c++)
      if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ .$():<>=!,-",
                  *c))
        fail_msg("unexpected byte 0x%02x in SQL fragment '%s'", (unsigned char)*c, parts[p]);
  assert_null(strstr(qq->where, "DROP"));
  assert_null(strstr(qq->where, "--"));
}

static void input_only_reaches_parameters(void **state) {
  static const char *nasty[] = {
      "x'); DROP TABLE users; --", "' OR '1'='1",   "\\\"; SELECT pg_sleep(10); --",
      "$1 $2 $$ $tag$ ::text",     "%_\\ LIKE 'a'", "u.username",
  };
  char filter[640], escaped[128];
  for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
    size_t n = 0;
    for (const char *c = nasty[i]; *c; c++) {
      if (*c == '"' || *c == '\\') escaped[n++] = '\\';
      escaped[n++] = *c;
    }
    escaped[n] = '\0';
    snprintf(filter, sizeof(filter), "email = \"%s\" AND labels.k = \"%s\"", escaped, escaped);
    if (build(filter, NULL, 0, NULL) != 0) fail_msg("'%s': %s", filter, err);
    assert_sql_is_ours(&q);
    assert_string_equal(q.params[0], nasty[i]);
    assert_string_equal(q.params[2], nasty[i]);
  }
  /* rejected attempts leave nothing behind and do not echo SQL */
  expect_error("uid = 1; DROP TABLE users", NULL, 0, NULL, "filter: unexpected \";\" at offset 7");
  expect_error("labels.k'x = \"v\"", NULL, 0, NULL,
               "filter: expected an operator (=, !=, <, <=, >, >=) after \"labels.k\"");
  expect_error("username = \"a\" --", NULL, 0, NULL, "filter: negation (\"-\") is not supported");

  /* random soup of grammar pieces and metacharacters: whatever is accepted is still ours */
  static const char *pieces[] = {
      "username",    "uid",
      "labels.a",    "role",
      "create_time", " ",
      "=",           "!=",
      "<",           ">=",
      "\"",          "\\",
      "'",           ";",
      "--",          "AND",
      "OR",          "*",
      "%",           "$1",
      "1",           "-2",
      "ROLE_ADMIN",  "true",
      "\"x\"",       "\"2024-01-01T00:00:00Z\"",
      "(",           ")",
      ",",           "\xc3\xa9",
      ".",
  };
  uint32_t rng = 12345;
  int accepted = 0;
  for (int round = 0; round < 20000; round++) {
    size_t len = 0;
    int count = 1 + (int)((rng = rng * 1103515245u + 12345u) >> 16) % 12;
    for (int k = 0; k < count; k++) {
      rng = rng * 1103515245u + 12345u;
      const char *piece = pieces[(rng >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
      len += (size_t)snprintf(filter + len, sizeof(filter) - len, "%s", piece);
    }
    if (build(filter, NULL, 0, NULL) == 0) {
      accepted++;
      assert_sql_is_ours(&q);
    } else {
      assert_true(strncmp(err, "filter: ", 8) == 0);
    }
  }
  assert_true(accepted > 0);
}

static void page_tokens_round_trip(void **state) {
  const char *filter = "disabled = false", *order = "uid desc";
  char token[LQ_PAGE_TOKEN_SIZE];
  assert_int_equal(build(filter, order, 2, NULL), 0);
  lq_next_token(&q, filter, order, "users|projects/p1", 2, 5, token, sizeof(token));
  assert_true(strlen(token) > 0);
  for (const char *c = token; *c; c++)
    assert_non_null(
        strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "abcdefghijklmnopqrstuvwxyz"
               "0123456789-_",
               *c));
  assert_int_equal(build(filter, order, 2, token), 0);
  assert_int_equal(q.offset, 2);
  assert_string_equal(q.params[q.nparams - 2], "2");
  assert_string_equal(q.params[q.nparams - 1], "2");
  lq_next_token(&q, filter, order, "users|projects/p1", 2, 5, token, sizeof(token));
  /* page_size may change between pages */
  assert_int_equal(build(filter, order, 10, token), 0);
  assert_int_equal(q.offset, 4);
  assert_string_equal(q.params[q.nparams - 1], "4");
  lq_next_token(&q, filter, order, "users|projects/p1", 1, 5, token, sizeof(token));
  assert_string_equal(token, ""); /* the last page */
  /* nothing returned (rows vanished), past the end, or a buffer too small: no token */
  lq_next_token(&q, filter, order, "users|projects/p1", 0, 50, token, sizeof(token));
  assert_string_equal(token, "");
  lq_next_token(&q, filter, order, "users|projects/p1", 3, 2, token, sizeof(token));
  assert_string_equal(token, "");
  assert_int_equal(build(filter, order, 2, NULL), 0);
  lq_next_token(&q, filter, order, "users|projects/p1", 2, 5, token, 8);
  assert_string_equal(token, "");
  /* NULL and "" are the same absent filter */
  assert_int_equal(build(NULL, NULL, 2, NULL), 0);
  lq_next_token(&q, "", "", "users|projects/p1", 2, 3, token, sizeof(token));
  assert_int_equal(build(NULL, NULL, 2, token), 0);
  assert_int_equal(q.offset, 2);
}

static void foreign_or_broken_tokens_are_rejected(void **state) {
  char token[LQ_PAGE_TOKEN_SIZE];
  assert_int_equal(build("uid > 1", "uid", 2, NULL), 0);
  lq_next_token(&q, "uid > 1", "uid", "users|projects/p1", 2, 10, token, sizeof(token));
  assert_true(strlen(token) > 0);
  const char *mismatch = "page_token does not match this request";
  expect_error("uid > 2", "uid", 2, token, mismatch);
  expect_error("uid > 1", "uid desc", 2, token, mismatch);
  expect_error("uid > 1", "", 2, token, mismatch);
  assert_int_equal(
      lq_build(&spec, "uid > 1", "uid", 2, token, "users|projects/p2", 1, &q, err, sizeof(err)),
      -1);
  assert_string_equal(err, mismatch);
  /* parts are length-prefixed: moving text from order_by to fingerprint changes the hash */
  assert_int_equal(lq_build(&spec, NULL, "uid", 1, NULL, "", 1, &q, err, sizeof(err)), 0);
  lq_next_token(&q, NULL, "uid", "", 1, 10, token, sizeof(token));
  assert_int_equal(lq_build(&spec, NULL, "uid", 1, token, "", 1, &q, err, sizeof(err)), 0);
  assert_int_equal(lq_build(&spec, NULL, NULL, 1, token, "uid", 1, &q, err, sizeof(err)), -1);
  assert_string_equal(err, mismatch);

  const char *malformed = "page_token is malformed";
  char bad[64];
  assert_int_equal(build("uid > 1", "uid", 2, NULL), 0);
  lq_next_token(&q, "uid > 1", "uid", "users|projects/p1", 2, 10, token, sizeof(token));
  static const char *garbage[] = {"x",
                                  "!!!!!!!!!!!!!!!!!!!!!!!",
                                  "AAAAAAAAAAAAAAAAAAAAAAA",
                                  "_______________________",
                                  "o42",
                                  "' OR 1=1 --"};
  for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
    expect_error("uid > 1", "uid", 2, garbage[i], malformed);
  snprintf(bad, sizeof(bad), "%s=", token); /* padding */
  expect_error("uid > 1", "uid", 2, bad, malformed);
  snprintf(bad, sizeof(bad), "%.*s", (int)strlen(token) - 1, token); /* truncated */
  expect_error("uid > 1", "uid", 2, bad, malformed);
  snprintf(bad, sizeof(bad), "%s", token);
  bad[0] = bad[0] == 'A' ? 'B' : 'A'; /* version byte changed */
  expect_error("uid > 1", "uid", 2, bad, malformed);
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  snprintf(bad, sizeof(bad), "%s", token);
  char *last = &bad[strlen(bad) - 1];
  *last = b64[(strchr(b64, *last) - b64) ^ 1]; /* a non-zero unused bit: not canonical */
  expect_error("uid > 1", "uid", 2, bad, malformed);
}

static void page_size_is_clamped(void **state) {
  static const struct {
    int in, out;
  } cases[] = {{0, 50}, {1, 1}, {10, 10}, {500, 500}, {501, 500}, {2147483647, 500}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(build(NULL, NULL, cases[i].in, NULL), 0);
    assert_int_equal(q.page_size, cases[i].out);
    char text[16];
    snprintf(text, sizeof(text), "%d", cases[i].out);
    assert_string_equal(q.params[0], text);
  }
  expect_error(NULL, NULL, -1, NULL, "page_size must not be negative");
  expect_error(NULL, NULL, -2147483647 - 1, NULL, "page_size must not be negative");
}

static void small_error_buffers_are_safe(void **state) {
  char tiny[8];
  assert_int_equal(lq_build(&spec, "nope = 1", NULL, 0, NULL, "", 1, &q, tiny, sizeof(tiny)), -1);
  assert_string_equal(tiny, "filter:");
  assert_int_equal(lq_build(&spec, "nope = 1", NULL, 0, NULL, "", 1, &q, NULL, 0), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_for_an_empty_request),
      cmocka_unit_test(filters_become_exact_sql),
      cmocka_unit_test(prefix_match_escapes_like_metacharacters),
      cmocka_unit_test(placeholders_start_at_first_param),
      cmocka_unit_test(order_by_lists),
      cmocka_unit_test(filter_rejections),
      cmocka_unit_test(timestamps_are_validated),
      cmocka_unit_test(size_and_count_limits),
      cmocka_unit_test(order_by_rejections),
      cmocka_unit_test(input_only_reaches_parameters),
      cmocka_unit_test(page_tokens_round_trip),
      cmocka_unit_test(foreign_or_broken_tokens_are_rejected),
      cmocka_unit_test(page_size_is_clamped),
      cmocka_unit_test(small_error_buffers_are_safe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
