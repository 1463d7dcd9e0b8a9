/*
 * backup.c - the method table of novacron.v1.BackupService.
 */
#include "api/services.h"
#include "novacron/v1/backup.pb-c.h"

const api_service api_backup_service = {&novacron__v1__backup_service__descriptor, NULL, 0};
