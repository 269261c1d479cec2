/*
 * conf.h - mitral's configuration: YAML (libyaml) -> an immutable struct mt_conf, driven by the
 * key table node/conf/keys.def (nginx ngx_command_t style: key path, type, default, offset,
 * validator). Unknown keys and bad values are errors reported as "file:line: what is wrong".
 * SIGHUP builds a new mt_conf and swaps it in; the old one is freed when nothing uses it.
 * PURE apart from reading the file (mt_conf_load_string parses from memory for tests).
 */
#ifndef MT_CONF_H
#define MT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../index/index.h"

#define MT_CONF_MAX_LIST 64

/* One project folder (`projects:` list): a set of studies (index table project_studies) seen
 * through its own AE title. A later issue adds DICOMweb users here. */
typedef struct mt_conf_project {
    char name[65];          /* [A-Za-z0-9._-], 1-64 characters, unique */
    char ae_title[17];      /* called AE title of the project, unique, != node.ae_title */
    char *description;      /* free text, may be NULL */
    char *calling_ae_allow[MT_CONF_MAX_LIST]; /* allowed calling AE titles; empty = any */
    size_t n_calling_ae_allow;
} mt_conf_project_t;

#define MT_CONF_MAX_PROJECTS 256

/* A remote application entity we open associations to (`move_destinations:` list): C-MOVE
 * destinations, and the address where storage commitment results go when the requester's
 * association has closed. */
typedef struct mt_conf_dest {
    char ae_title[17]; /* unique */
    char host[256];    /* host name or address literal */
    uint16_t port;
} mt_conf_dest_t;

#define MT_CONF_MAX_DESTS 1024
/* One DICOMweb user (`users:` list). Secrets are stored hashed (node/http/auth.h):
 * "sha256$<hex>" or "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>"; `mitral passwd`
 * prints one. admin: may use /dicomweb (every study) and every project. */
typedef struct mt_conf_user {
    char name[65];
    char *password_hash; /* HTTP Basic; NULL = no password login */
    char *token_hash;    /* Authorization: Bearer; NULL = no token */
    bool admin;
    char *projects[MT_CONF_MAX_LIST]; /* project names this user may use */
    size_t n_projects;
} mt_conf_user_t;

#define MT_CONF_MAX_USERS 256

/* One forwarding destination (`destinations:` list, issue 6) that routing rules name in
 * `forward: [..]`; the outbound queue (db/005_queue.sql) names it by name. Two kinds: a DICOM
 * Storage SCP (ae_title, host, port) or a DICOMweb STOW-RS origin server (stow_url; the keys
 * after it). The secrets are files, read at start-up (node/forward_web.c), never values here. */
typedef struct mt_conf_destination {
    char name[65];          /* [A-Za-z0-9._-], 1-64 characters, unique */
    char ae_title[17];      /* called AE title of the destination */
    char calling_ae[17];    /* our calling AE title; "" = node.ae_title */
    char host[256];         /* name or address literal */
    uint16_t port;
    char *ts[MT_CONF_MAX_LIST]; /* transfer_syntaxes: proposed in this order, UIDs; empty = the
                                 * stored file's own syntax, then Explicit/Implicit VR LE */
    size_t n_ts;
    uint32_t associations; /* concurrent associations (DICOMweb: `connections`, requests in
                            * parallel); 0 = forward.associations */
    /* DICOMweb STOW-RS (stow_url set) */
    char stow_url[1024];           /* http[s]://host[:port]/.../studies: POST target */
    char auth_user[65];            /* user: HTTP Basic user name, with password_file */
    char password_file[1024];      /* HTTP Basic password (mode 0600) */
    char token_file[1024];         /* Authorization: Bearer token (mode 0600) */
    char ca_file[1024];            /* PEM CA certificates for https; "" = the system store */
    bool tls_insecure_skip_verify; /* https without certificate checks (loudly logged) */
    uint32_t request_timeout_ms;   /* nothing moved for this long: failed; default 120 s */
    uint32_t max_instances;        /* instances per STOW-RS request, default 16 */
    uint32_t max_request_mb;       /* bytes per request (a larger instance goes alone), 64 */
} mt_conf_destination_t;

/* A DICOMweb (STOW-RS) destination. */
#define MT_CONF_DEST_IS_WEB(d) ((d)->stow_url[0] != '\0')

#define MT_CONF_MAX_DESTINATIONS 64

struct mt_route_set;

typedef struct mt_conf {
    /* node */
    char ae_title[17];          /* node.ae_title, default "MITRAL" */
    char bind[64];              /* node.bind, default "0.0.0.0" */
    uint16_t port;              /* node.port, default 11112 */
    char *data_dir;             /* node.data_dir: holds storage/ and index.sqlite; default "./data" */
    char *storage_root;         /* storage.root, default <data_dir>/storage */
    char *index_path;           /* index.path, default <data_dir>/index.sqlite */
    /* associations */
    char *calling_ae_allow[MT_CONF_MAX_LIST]; /* associations.allowed_calling_aes; empty = any */
    size_t n_calling_ae_allow;
    uint32_t max_associations;  /* associations.max, default 64 */
    uint32_t max_pdu;           /* associations.max_pdu, default 262144 (we receive) */
    uint32_t artim_timeout_ms;  /* associations.artim_timeout, default 30 s */
    uint32_t idle_timeout_ms;   /* associations.idle_timeout, default 300 s */
    uint32_t max_async_ops;     /* associations.max_async_operations, default 16 */
    char *ts_preference[MT_CONF_MAX_LIST]; /* associations.transfer_syntax_preference, UIDs */
    size_t n_ts_preference;
    /* storage */
    mt_dup_policy_t duplicates; /* storage.duplicates: overwrite | keep-first | reject */
    uint32_t max_batch;         /* storage.max_batch, default 256 */
    /* de-identification (PS3.15 Annex E, node/deid/): what C-STORE writes to disk */
    char *deid_profile;         /* deid.profile: "none" (store as received), a profile NAME in
                                 * deid-profiles/, or a FILE (.yaml or containing '/') */
    char *deid_key_file;        /* deid.key_file: the site secret (mode 0600); "none" */
    /* query (C-FIND, later QIDO-RS) */
    uint32_t max_matches;       /* query.max_matches, default 10000: more answers A700 */
    /* CMR series tagging (node/tagger.c, docs/tagging.md) */
    int tag_enabled;             /* tagging.enabled: false | true (default): no tagger, no
                                  * header capture when false */
    uint32_t tag_series_idle_ms; /* tagging.series_idle, default 10 s: tag a series this long
                                  * after its last instance */
    uint32_t tag_study_idle_ms;  /* tagging.study_idle, default 300 s: final exam-level pass,
                                  * then the study's features are dropped */
    /* projects (not in keys.def: a list of mappings, parsed by conf.c walk_projects) */
    mt_conf_project_t *projects;
    size_t n_projects;
    /* move destinations (not in keys.def: a list of mappings, conf.c walk_dests) */
    mt_conf_dest_t *dests;
    size_t n_dests;
    /* users (not in keys.def: a list of mappings, parsed by conf.c walk_users) */
    mt_conf_user_t *users;
    size_t n_users;
    /* DICOMweb (node/http/) */
    int http_enabled;           /* http.enabled: false | true */
    char http_bind[64];         /* http.bind, default 127.0.0.1 */
    uint16_t http_port;         /* http.port, default 8042 */
    uint32_t http_max_conns;    /* http.max_connections, default 256 */
    uint32_t http_max_header;   /* http.max_header_size (request line + headers), 16384 */
    uint32_t http_max_body_mb;  /* http.max_body_mb: largest request body (STOW-RS), 4096 */
    uint32_t http_stow_hold_mb; /* http.stow_hold_mb: STOW-RS metadata + bulk held, 1024 */
    uint32_t http_header_timeout_ms; /* http.header_timeout: whole header must arrive, 10 s */
    uint32_t http_idle_timeout_ms;   /* http.idle_timeout: no byte moved either way, 60 s */
    uint32_t http_tls_port;     /* http.tls_port: HTTPS listener, 0 = none */
    int http_tls;               /* http.tls: TLS on http.port: 0 off, 1 both (sniffed), 2 only */
    char *http_tls_cert;        /* http.tls_cert: PEM certificate chain, "none" */
    char *http_tls_key;         /* http.tls_key: PEM private key, "none" */
    /* routing and forwarding (issue 6) */
    char *routing_rules;        /* routing.rules: "none", a rules FILE, or a DIRECTORY whose
                                 * *.yaml files are read in name order */
    uint32_t fwd_associations;  /* forward.associations, default 2 per destination */
    uint32_t fwd_max_attempts;  /* forward.max_attempts, default 50: then dead-letter */
    uint32_t fwd_max_age_ms;    /* forward.max_age, default 168h: then dead-letter */
    uint32_t fwd_retry_initial_ms; /* forward.retry_initial, default 1s (doubles per attempt) */
    uint32_t fwd_retry_max_ms;  /* forward.retry_max, default 5m */
    uint32_t fwd_connect_timeout_ms; /* forward.connect_timeout, default 10s */
    uint32_t fwd_response_timeout_ms; /* forward.response_timeout, default 60s: a C-STORE
                                       * response awaited longer aborts the association */
    uint32_t fwd_max_async_ops; /* forward.max_async_operations, default 16: the asynchronous
                                 * operations window proposed (1 = one C-STORE at a time) */
    uint32_t fwd_idle_release_ms; /* forward.idle_release, default 5s: an association with
                                   * nothing to send is released after this long idle */
    int fwd_order;              /* forward.order: 0 series (default), 1 study: the unit whose
                                 * instances go out in arrival order over one association;
                                 * 2 none: every instance on its own (spread freely) */
    /* forwarding destinations (not in keys.def: conf.c walk_destinations) */
    mt_conf_destination_t *destinations;
    size_t n_destinations;
    /* The compiled routing rules (node/route/rules.h), NULL when routing.rules is none. Not
     * set by the loader: mt_route_load_conf fills it (it reads more files); mt_conf_free frees
     * it, so it lives exactly as long as the snapshot that associations hold. */
    struct mt_route_set *routes;
    /* logging */
    int log_level;              /* log.level: error|warn|info|debug|trace, default info */
    /* set by the loader: storage.root / index.path were given in the file, so
     * mt_conf_set_data_dir leaves them alone */
    bool storage_root_explicit;
    bool index_path_explicit;
} mt_conf_t;

/* Defaults for everything (data_dir "./data"). */
mt_conf_t *mt_conf_new_default(void);
/* Load a file. On error returns NULL and writes "file:line: message" into err. */
mt_conf_t *mt_conf_load(const char *path, char *err, size_t errsz);
/* Same from a string; name is used in messages in place of the file name. */
mt_conf_t *mt_conf_load_string(const char *yaml, size_t len, const char *name, char *err,
                               size_t errsz);
/* Derive storage_root/index_path from data_dir when they were not set explicitly. */
void mt_conf_set_data_dir(mt_conf_t *c, const char *dir);

/* `--data DIR` on a command line: DIR holds both the storage (DIR/storage) and the index
 * (DIR/index.sqlite), whatever the config file says. */
void mt_conf_use_data_dir(mt_conf_t *c, const char *dir);

/* A subcommand's config: FILE loaded (NULL: the built-in defaults), then `--data DIR` when
 * given. NULL when FILE does not load, its file:line error printed on stderr. */
mt_conf_t *mt_conf_for_command(const char *file, const char *data_dir);
void mt_conf_free(mt_conf_t *c);
/* The checks node.ae_title and node.bind get in a file, for the same values given as flags
 * (serve --aet / --bind): 0, or -1 with why = "\"value\" is not ...". An AE title is copied
 * to out without its leading and trailing spaces. */
int mt_conf_parse_ae(const char *v, char out[17], char *why, size_t whysz);
int mt_conf_check_bind(const char *v, char *why, size_t whysz);
/* The project whose AE title is ae (compared without leading/trailing spaces), or NULL. */
const mt_conf_project_t *mt_conf_project_by_ae(const mt_conf_t *c, const char *ae);
/* The move destination with AE title ae (compared without leading/trailing spaces), or NULL. */
const mt_conf_dest_t *mt_conf_dest_by_ae(const mt_conf_t *c, const char *ae);
/* The user named name, or NULL. */
const mt_conf_user_t *mt_conf_user_by_name(const mt_conf_t *c, const char *name);
/* The forwarding destination named name, or NULL. */
const mt_conf_destination_t *mt_conf_destination_by_name(const mt_conf_t *c, const char *name);
/* Replace dst's destinations by a copy of src's (SIGHUP: the forwarder keeps its own). */
void mt_conf_copy_destinations(mt_conf_t *dst, const mt_conf_t *src);
/* The project named name, or NULL. */
const mt_conf_project_t *mt_conf_project_by_name(const mt_conf_t *c, const char *name);

#endif
