/*
 * load.c - routing.rules -> c->routes (see load.h). The checker handed to the compiler looks
 * destinations and projects up in the config and compiles each deid profile once (adopted by the
 * rule set, so a profile lives exactly as long as the snapshot that holds the rules).
 */
#include "load.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../deid/load.h"
#include "../util/alloc.h"
#include "../util/err.h"

static int check_dest(void *u, const char *name, char *why, size_t whysz)
{
    const mt_conf_t *c = u;
    if (mt_conf_destination_by_name(c, name))
        return 0;
    snprintf(why, whysz, "not in destinations: of the config");
    return -1;
}

static int check_project(void *u, const char *name, char *why, size_t whysz)
{
    const mt_conf_t *c = u;
    if (mt_conf_project_by_name(c, name))
        return 0;
    snprintf(why, whysz, "not in projects: of the config");
    return -1;
}

static int check_profile(void *u, mt_route_set_t *set, const char *name, char *why, size_t whysz)
{
    const mt_conf_t *c = u;
    if (strcmp(c->deid_key_file, "none") == 0) {
        snprintf(why, whysz, "de-identification needs the site secret (deid.key_file)");
        return -1;
    }
    if (mt_route_set_profile(set, name))
        return 0;
    mt_deid_profile_t *p = NULL;
    if (mt_deid_load_profile(name, NULL, &p, why, whysz) != 0)
        return -1;
    mt_route_set_adopt_profile(set, name, p);
    return 0;
}

static int add_file(mt_route_set_t *set, const char *path, const mt_route_check_t *chk, char *err,
                    size_t errsz)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mt_deid_read_file(path, MT_ROUTE_MAX_FILE, &buf, &len);
    if (rc) {
        snprintf(err, errsz, "%s: cannot read: %s", path, mt_strerror(rc));
        return MT_ECONF;
    }
    rc = mt_route_set_add(set, (const char *)buf, len, path, chk, err, errsz);
    mt_free(buf);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int mt_route_load_conf(mt_conf_t *c, char *err, size_t errsz)
{
    if (!c->routing_rules || strcmp(c->routing_rules, "none") == 0)
        return 0;
    mt_route_check_t chk = {check_dest, check_project, check_profile, c};
    mt_route_set_t *set = mt_route_set_new();
    struct stat st;
    int rc = 0;
    if (stat(c->routing_rules, &st) != 0) {
        snprintf(err, errsz, "routing.rules: %s: no such file or directory", c->routing_rules);
        rc = MT_ECONF;
    } else if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(c->routing_rules);
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0)
                continue;
            names = mt_realloc(names, (n + 1) * sizeof *names);
            size_t pl = strlen(c->routing_rules) + 1 + l + 1;
            names[n] = mt_malloc(pl);
            snprintf(names[n], pl, "%s/%s", c->routing_rules, de->d_name);
            n++;
        }
        if (d)
            closedir(d);
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            if (!rc)
                rc = add_file(set, names[i], &chk, err, errsz);
            mt_free(names[i]);
        }
        mt_free(names);
    } else {
        rc = add_file(set, c->routing_rules, &chk, err, errsz);
    }
    const char *where = NULL;
    if (!rc && !c->tag_enabled && mt_route_set_after_tag(set, &where)) {
        snprintf(err, errsz, "%s: the rule matches cmr_series, but tagging.enabled is false",
                 where);
        rc = MT_ECONF;
    }
    if (rc) {
        mt_route_set_free(set);
        return MT_ECONF;
    }
    mt_route_set_free(c->routes);
    c->routes = set;
    return 0;
}
