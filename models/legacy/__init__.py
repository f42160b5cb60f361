"""The legacy backend's event family: types, versions, their JSON / base64-protobuf / encrypted encodings."""
