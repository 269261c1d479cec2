/*
 * quarantine_cli.h - `mitral quarantine list|release SOP_UID...|purge (SOP_UID...|--all)`:
 * the operator's side of the de-identification quarantine (instances whose Burned In
 * Annotation is YES under a profile with burned-in-annotation: quarantine; docs/deid.md).
 * Blocking file I/O; main.c parses the options and calls this. Design: quarantine_cli.c.
 */
#ifndef MT_QUARANTINE_CLI_H
#define MT_QUARANTINE_CLI_H

#include <stdbool.h>

/* what: "list", "release" (uids: the instances reviewed and cleared) or "purge" (uids, or
 * every file when all). Returns the process exit code (0 ok, 1 a failure, 2 usage). */
int mt_quarantine_cli(const char *storage_root, const char *index_path, const char *what,
                      int n_uids, char **uids, bool all);

#endif
