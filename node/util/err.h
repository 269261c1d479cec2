/*
 * err.h - mitral's error codes, one X-macro list (libuv's UV_ERRNO_MAP pattern).
 *
 * Every function that can fail returns an int: 0 (or a positive count) for success and a
 * negative MT_E* code for failure. System errno values are converted with MT_ERR_FROM_ERRNO on
 * the line that made the call; libuv errors (already negative errnos) pass straight through.
 * mt_strerror() and mt_err_name() are generated from the same list.
 */
#ifndef MT_UTIL_ERR_H
#define MT_UTIL_ERR_H

#include <errno.h>

#define MT_ERR_MAP(XX)                                                                     \
    XX(EAGAIN, -EAGAIN, "need more input")                                                 \
    XX(ENOMEM, -ENOMEM, "out of memory")                                                   \
    XX(EINVAL, -EINVAL, "invalid argument")                                                \
    XX(EIO, -EIO, "input/output error")                                                    \
    XX(ENOENT, -ENOENT, "no such file or directory")                                       \
    XX(EEXIST, -EEXIST, "already exists")                                                  \
    XX(ENOSPC, -ENOSPC, "no space left on device")                                         \
    XX(ECANCELED, -ECANCELED, "operation canceled")                                        \
    XX(EMALFORMED, -4001, "malformed input")                                               \
    XX(ETOOBIG, -4002, "value larger than the configured limit")                           \
    XX(EUNSUPPORTED, -4003, "unsupported feature or transfer syntax")                      \
    XX(EPROTO, -4004, "protocol violation")                                                \
    XX(EDUPLICATE, -4005, "duplicate SOP instance")                                        \
    XX(ECONF, -4006, "configuration error")                                                \
    XX(EDB, -4007, "index database error")                                                 \
    XX(EREJECTED, -4008, "rejected by policy")                                             \
    XX(ESTATE, -4009, "operation not allowed in this state")

enum {
#define XX(name, val, msg) MT_##name = (val),
    MT_ERR_MAP(XX)
#undef XX
};

/* Convert the current errno into a negative error code (call right after the system call). */
#define MT_ERR_FROM_ERRNO() (-(errno))

const char *mt_strerror(int err);
const char *mt_err_name(int err);

#endif
