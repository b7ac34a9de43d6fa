# Builds the revline binary. Runners are started with /bin/sh, so the
# runtime image keeps a shell and python3 for the README's example runner.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/revline ./cmd/revline

FROM python:3.12-slim
COPY --from=build /out/revline /usr/local/bin/revline
RUN useradd --create-home revline
USER revline
WORKDIR /home/revline
EXPOSE 8080
ENTRYPOINT ["revline"]
CMD ["serve"]
