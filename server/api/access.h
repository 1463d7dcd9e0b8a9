/*
 * access.h - the values of rpc_method_row.access, read by the authorization
 * interceptor (api/authz.c).
 *
 * Every row of every service declares one of these plus, for the
 * project-scoped ones, its `scope`: the dotted path of the request field
 * that names the resource or parent the call acts on. The project is the
 * `{project}` of a `projects/{project}/...` value; `projects/-` (lists across
 * projects) lets any authenticated caller through and the handler filters
 * to the projects the caller can see. Rows with RPC_PUBLIC skip
 * authentication altogether (Login, RefreshToken).
 *
 * The zero value is the most restrictive, so a row that forgets to say is
 * closed rather than open.
 */
#ifndef NC_API_ACCESS_H
#define NC_API_ACCESS_H

/* The access level is the low bits; API_ACROSS_PROJECTS may be or-ed in. */
#define API_ACCESS_LEVEL(a) ((a)&0x0f)

enum api_access {
  API_SYSTEM_ADMIN = 0,  /* system administrators only (hosts, pools, peers, users...) */
  API_AUTHENTICATED = 1, /* any authenticated caller; the handler applies finer rules */
  API_VIEWER = 2,        /* ROLE_VIEWER or higher on the project named by `scope` */
  API_OPERATOR = 3,      /* ROLE_OPERATOR or higher on that project */
  API_ADMIN = 4,         /* ROLE_ADMIN on that project */
  /* Or-ed into a list row whose proto allows the parent `projects/-` (every
   * project the caller has a role on): any authenticated caller passes and
   * the handler filters. Elsewhere `projects/-` is for system
   * administrators only, like an empty scope or a name outside projects. */
  API_ACROSS_PROJECTS = 0x10,
};

#endif
