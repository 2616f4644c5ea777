# --- step 1 ---
$PSVersionTable.PSVersion.Major | ConvertTo-Json
# --- step 2 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ Generation = $vm.Generation }
    $out.Dvd = @(Get-VMDvdDrive -VM $vm | Select-Object @{n='ControllerType'; e={"$($_.ControllerType)"}}, ControllerNumber, ControllerLocation, Path)
    if ($vm.Generation -eq 2) {
        $out.BootOrder = @((Get-VMFirmware -VM $vm).BootOrder | Select-Object FirmwarePath, Description)
    } else {
        $out.StartupOrder = @((Get-VMBios -VM $vm).StartupOrder | ForEach-Object { "$_" })
    }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 3 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $iso = Add-VMDvdDrive -VM $vm -Path '\\files\vmtailor\vmtailor\web01\vmtailor.iso' -Passthru
    $cfg = Add-VMDvdDrive -VM $vm -Path '\\files\vmtailor\vmtailor\web01\config.iso' -Passthru
    Set-VMBios -VM $vm -StartupOrder @('CD', 'IDE', 'LegacyNetworkAdapter', 'Floppy')
    $out = @{ ok = $true }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 4 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    Start-VM -VM $vm
    $out = @{ ok = $true }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 5 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ State = "$($vm.State)" }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 6 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ State = "$($vm.State)" }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 7 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ State = "$($vm.State)" }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 8 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $known = @('IDE:1:0')
    $ours = @(Get-VMDvdDrive -VM $vm | Where-Object {
        $known -notcontains ('{0}:{1}:{2}' -f $_.ControllerType, $_.ControllerNumber, $_.ControllerLocation)
    })
    $ours | Remove-VMDvdDrive
    Set-VMBios -VM $vm -StartupOrder @('IDE', 'CD', 'LegacyNetworkAdapter', 'Floppy')
    $out = @{ removed = $ours.Count }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
