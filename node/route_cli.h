/* route_cli.h - `mitral route test` and `mitral queue list|retry|purge` (issue 6). */
#ifndef MT_ROUTE_CLI_H
#define MT_ROUTE_CLI_H

int mt_route_cli(int argc, char **argv);
int mt_queue_cli(int argc, char **argv);

#endif
