/*
 * tag_cli.h - `mitral tag FILES|DIRS...` (tag_cli.c): the CMR tagger without a node.
 */
#ifndef MT_TAG_CLI_H
#define MT_TAG_CLI_H

/* argv[0] is "tag". Returns the process exit status. */
int mt_tag_cli_main(int argc, char **argv);

#endif
