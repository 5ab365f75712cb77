// Shoal's release version, shared by members and clients.
#pragma once
#define SHOAL_VERSION "0.1.0"
