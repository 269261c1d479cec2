/*
 * load.h - read routing.rules (a file, or a directory of *.yaml read in name order), compile it
 * against the config (destinations, projects) and load the deid profiles the rules name. Not
 * pure (reads files); the compiler itself is rules.c.
 */
#ifndef MT_ROUTE_LOAD_H
#define MT_ROUTE_LOAD_H

#include <stddef.h>

#include "../conf/conf.h"
#include "rules.h"

/* Compile c->routing_rules into c->routes (left NULL when routing.rules is none). A rule naming
 * a deid profile needs deid.key_file. Returns 0, or MT_ECONF with err = "file:line: message". */
int mt_route_load_conf(mt_conf_t *c, char *err, size_t errsz);

#endif
