# Turns a binary file into a C source: const unsigned char SYMBOL[] and
# const size_t SYMBOL_len. Usage: cmake -DIN= -DOUT= -DSYMBOL= -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\n#include <stddef.h>\n"
  "extern const unsigned char ${SYMBOL}[];\nextern const size_t ${SYMBOL}_len;\n"
  "const unsigned char ${SYMBOL}[] = {\n${body}0x00};\nconst size_t ${SYMBOL}_len = ${len};\n")
