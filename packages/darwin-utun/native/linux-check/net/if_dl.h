#pragma once
// Linux check only: see ../prelude.h. Not Darwin's layouts or values.
struct sockaddr_dl { unsigned char sdl_len; unsigned char sdl_family; unsigned short sdl_index; unsigned char sdl_type, sdl_nlen, sdl_alen, sdl_slen; char sdl_data[12]; };
