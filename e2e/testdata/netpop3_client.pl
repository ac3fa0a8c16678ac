#!/usr/bin/perl
# Drive pop3d with Perl's Net::POP3 and print what it saw as JSON.
#
# Usage: netpop3_client.pl MODE HOST PORT USER PASS CAFILE DELETE
#   MODE    plain | starttls | ssl
#   CAFILE  PEM file of the CA to trust ("" for plain)
#   DELETE  comma-separated message numbers to delete before quit
# Bodies are the lines Net::POP3 returns (LF line ends, un-stuffed) joined,
# base64-encoded. Exits non-zero on any failure.
use strict;
use warnings;
use Net::POP3;
use JSON::PP;
use MIME::Base64;

my ($mode, $host, $port, $user, $pass, $cafile, $delete) = @ARGV;
die "usage\n" unless defined $delete;
my %ssl = $cafile ne '' ? (SSL_ca_file => $cafile, SSL_verify_mode => 1) : ();

my $pop = Net::POP3->new($host, Port => $port, Timeout => 30,
	($mode eq 'ssl' ? (SSL => 1, %ssl) : ()))
	or die "connect: $@\n";
my %out;
$out{banner} = $pop->banner;
if ($mode eq 'starttls') {
	$pop->can('starttls') or die "Net::POP3 $Net::POP3::VERSION has no starttls\n";
	$pop->starttls(%ssl) or die "starttls failed: " . ($pop->message // '') . "\n";
	$out{tls} = ref($pop) =~ /SSL/ || $pop->isa('IO::Socket::SSL') ? JSON::PP::true : JSON::PP::false;
}
my $n = $pop->login($user, $pass);
defined $n or die "login failed: " . ($pop->message // '') . "\n";
$out{count} = $n + 0;
my $list = $pop->list or die "list failed\n";
$out{list} = { map { $_ => $list->{$_} + 0 } keys %$list };
my $uidl = $pop->uidl or die "uidl failed\n";
$out{uidl} = $uidl;
for my $i (1 .. $n) {
	my $lines = $pop->get($i) or die "get $i failed: " . ($pop->message // '') . "\n";
	$out{get}{$i} = encode_base64(join('', @$lines), '');
}
for my $i (grep { $_ ne '' } split /,/, $delete) {
	$pop->delete($i) or die "delete $i failed\n";
	push @{$out{deleted}}, $i + 0;
}
$pop->quit or die "quit failed\n";
print encode_json(\%out);
