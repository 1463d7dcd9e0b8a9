/*
 * backup.c - the method table of novacron.v1.BackupService: per method, the
 * access the authorization interceptor (api/authz.c) requires and the
 * request field naming the repository, policy, backup or project it acts
 * on. All three live under projects/ (backup.proto): reads need
 * ROLE_VIEWER, taking, deleting, verifying and restoring backups
 * ROLE_OPERATOR, managing repositories and policies ROLE_ADMIN. No handlers
 * yet: the methods answer UNIMPLEMENTED after authorization.
 */
#include "api/services.h"
#include "novacron/v1/backup.pb-c.h"

#define ROW(n, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    ROW("CreateRepository", MUT, API_ADMIN, "parent"),
    ROW("GetRepository", RO, API_VIEWER, "name"),
    ROW("ListRepositories", RO, API_VIEWER, "parent"),
    ROW("DeleteRepository", MUT, API_ADMIN, "name"),
    ROW("CreateBackupPolicy", MUT, API_ADMIN, "parent"),
    ROW("GetBackupPolicy", RO, API_VIEWER, "name"),
    ROW("ListBackupPolicies", RO, API_VIEWER, "parent"),
    ROW("UpdateBackupPolicy", MUT, API_ADMIN, "backup_policy.name"),
    ROW("DeleteBackupPolicy", MUT, API_ADMIN, "name"),
    ROW("CreateBackup", MUT, API_OPERATOR, "parent"),
    ROW("GetBackup", RO, API_VIEWER, "name"),
    ROW("ListBackups", RO, API_VIEWER, "parent"),
    ROW("DeleteBackup", MUT, API_OPERATOR, "name"),
    ROW("VerifyBackup", MUT, API_OPERATOR, "name"),
    ROW("RestoreBackup", MUT, API_OPERATOR, "name"), /* the backup; the VM stays in its project */
};

const api_service api_backup_service = {&novacron__v1__backup_service__descriptor, API_ROWS(rows)};
