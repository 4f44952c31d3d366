"""How steps reach the executor: length-prefixed JSON frames on stdio, or Kafka topics."""
