"""Streams: the Faust app that runs the domain deciders on Kafka in production."""
