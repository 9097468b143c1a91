#ifndef PAYHOOK_CLIBCRYPTO_SHIM_H
#define PAYHOOK_CLIBCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/x509.h>
#endif
