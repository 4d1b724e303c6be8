/* Placeholder until the CLI lands. */
#include <stdio.h>
int main(void) { puts("sbdisk " SBD_VERSION); return 0; }
