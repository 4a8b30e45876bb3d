#pragma once
// Linux check only: see ../prelude.h. Not Darwin's layouts or values.
#include <stdint.h>
#define MAX_KCTL_NAME 96
#define CTLIOCGINFO 0xc0644e03
struct ctl_info { uint32_t ctl_id; char ctl_name[MAX_KCTL_NAME]; };
struct sockaddr_ctl { unsigned char sc_len; unsigned char sc_family; uint16_t ss_sysaddr; uint32_t sc_id; uint32_t sc_unit; uint32_t sc_reserved[5]; };
