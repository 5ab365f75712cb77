# Value types of the capnp_codec example: an application's own Cap'n Proto schema, stored in a
# Shoal map through a shoal::Codec specialisation (see capnp_codec.cpp).
@0xe101976fd67e8426;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shoal::example::schema");

struct Order {
  id @0 :UInt64;
  customer @1 :Text;
  amountCents @2 :Int64;
  lines @3 :List(Line);

  struct Line {
    sku @0 :Text;
    quantity @1 :UInt32;
  }
}
