/*
 * send_cli.h - `mitral send`: C-STORE SCU command line (send_cli.c).
 */
#ifndef MT_SEND_CLI_H
#define MT_SEND_CLI_H

int mt_send_cli_main(int argc, char **argv);

#endif
