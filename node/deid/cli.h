/*
 * cli.h - `mitral deid`, offline batch de-identification (node/deid/cli.c has the design).
 * NOT pure: reads profiles, the key file and the inputs, writes the outputs.
 */
#ifndef MT_DEID_CLI_H
#define MT_DEID_CLI_H

/* argv[0] is "deid"; the rest as in the usage text. Returns the process exit status:
 * 0 all written, 1 some input failed or was rejected, 2 usage, profile or key error. */
int mt_deid_cli(int argc, char **argv);

#endif
